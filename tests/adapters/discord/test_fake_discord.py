"""The fake Discord drives bare, unmodified discord.py code (no convene code here).

These tests prove the harness the Discord adapter's tests build on: login/identify,
command sync, slash → ephemeral answer, button → modal (Label type 18) → submit,
defer + follow-ups, DynamicItem across a restart, 429 retry, op 7 → RESUME, and the
Discord rules the fake enforces (3 s, double ack, token TTL, limits, allowed_mentions).
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.platform_fakes import discord_payloads as p
from tests.platform_fakes.discord import PRIVILEGED_INTENTS, FakeDiscord
from tests.platform_fakes.discord_client import client_kwargs, running_client

RunClient = Callable[..., AbstractAsyncContextManager[Any]]
NONE: dict[str, list[str]] = {"parse": []}


class Contribution(discord.ui.Modal, title="Your contribution"):
    """A modal in the form the adapter uses: a Label (type 18) wrapping a TextInput."""

    def __init__(self, round_id: str) -> None:
        super().__init__(custom_id=f"contrib:{round_id}")
        self.text: discord.ui.TextInput[Contribution] = discord.ui.TextInput(
            custom_id="text", style=discord.TextStyle.paragraph, max_length=1500
        )
        self.add_item(discord.ui.Label(text="What do you think?", component=self.text))

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"Received: {self.text.value}", ephemeral=True)


class ContributeButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"contrib:open:(?P<round>\d+)"
):
    """State lives in the custom_id, so it works after a restart without stored views."""

    def __init__(self, round_id: str) -> None:
        super().__init__(discord.ui.Button(label="Contribute", custom_id=f"contrib:open:{round_id}"))
        self.round_id = round_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ContributeButton:
        return cls(match["round"])

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(Contribution(self.round_id))


def make_bot(**overrides: Any) -> commands.Bot:
    """A bot with a ``/convene`` group (start, status) and the dynamic button registered."""
    bot = commands.Bot(command_prefix=commands.when_mentioned, **client_kwargs(**overrides))
    group = app_commands.Group(name="convene", description="Convene a dialogue")

    @group.command(name="start", description="Start a round")
    async def start(interaction: discord.Interaction, topic: str) -> None:
        view = discord.ui.View(timeout=None)
        view.add_item(ContributeButton("7"))
        await interaction.response.send_message(f"Round on {topic} started", view=view, ephemeral=True)

    @group.command(name="status", description="Show the round status")
    async def status(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("open", ephemeral=True)

    bot.tree.add_command(group)

    async def setup_hook() -> None:
        bot.add_dynamic_items(ContributeButton)

    bot.setup_hook = setup_hook  # type: ignore[method-assign]
    return bot


def single_command_bot(handler: Callable[[discord.Interaction], Any], **overrides: Any) -> commands.Bot:
    """A bot whose ``/convene run`` calls ``handler(interaction)``."""
    bot = commands.Bot(command_prefix=commands.when_mentioned, **client_kwargs(**overrides))
    group = app_commands.Group(name="convene", description="Convene a dialogue")

    @group.command(name="run", description="Run the test handler")
    async def run(interaction: discord.Interaction) -> None:
        await handler(interaction)

    bot.tree.add_command(group)
    return bot


# ------------------------------------------------------------------------- connecting


async def test_login_and_identify_without_privileged_intents(
    fake_discord: FakeDiscord, run_client: RunClient
) -> None:
    client = discord.Client(**client_kwargs())
    async with run_client(client):
        me = fake_discord.calls_to("GET /users/@me")[0]
        assert me.headers["Authorization"] == "Bot fake-bot-token"
        assert fake_discord.calls_to("GET /oauth2/applications/@me")
        [identify] = fake_discord.identifies
        assert identify["token"] == "fake-bot-token"
        assert identify["intents"] == discord.Intents.default().value
        assert identify["intents"] & PRIVILEGED_INTENTS == 0
        conn = await fake_discord.wait_connected()
        assert conn.query["v"] == "10"
        assert conn.query["encoding"] == "json"
        guild = client.get_guild(int(fake_discord.guild["id"]))
        assert guild is not None
        assert guild.get_channel(int(fake_discord.channel["id"])) is not None
        assert client.application_id == int(fake_discord.app_id)


async def test_wrong_token_and_privileged_intents_are_refused(fake_discord: FakeDiscord) -> None:
    with pytest.raises(discord.LoginFailure):
        async with running_client(fake_discord, discord.Client(**client_kwargs()), token="wrong"):
            pass
    with pytest.raises(discord.PrivilegedIntentsRequired):
        async with running_client(
            fake_discord, discord.Client(**client_kwargs(intents=discord.Intents.all()))
        ):
            pass
    assert fake_discord.calls_to("GET /users/@me")[0].status == 401


async def test_tree_sync_is_recorded(fake_discord: FakeDiscord, run_client: RunClient) -> None:
    bot = make_bot()
    async with run_client(bot):
        synced = await bot.tree.sync()
        assert [c.name for c in synced] == ["convene"]
        [put] = fake_discord.calls_to("PUT /applications/{app_id}/commands")
        assert put.path == f"/applications/{fake_discord.app_id}/commands"
        [cmd] = put.json
        assert cmd["name"] == "convene"
        subs = {o["name"]: o for o in cmd["options"]}
        assert {o["type"] for o in subs.values()} == {p.SUB_COMMAND}
        assert subs["start"]["options"][0] == {
            **subs["start"]["options"][0],
            "name": "topic",
            "type": 3,
            "required": True,
        }

        guild = discord.Object(int(fake_discord.guild["id"]))
        bot.tree.copy_global_to(guild=guild)
        await bot.tree.sync(guild=guild)
        assert [c["name"] for c in fake_discord.guild_commands[fake_discord.guild["id"]]] == ["convene"]
        fetched = await bot.tree.fetch_commands()
        assert [c.id for c in fetched] == [int(fake_discord.global_commands[0]["id"])]


# ----------------------------------------------------------------------- interactions


async def test_slash_subcommand_answered_ephemerally(
    fake_discord: FakeDiscord, run_client: RunClient
) -> None:
    bot = make_bot()
    async with run_client(bot):
        await bot.tree.sync()
        rec = await fake_discord.interact(fake_discord.slash("convene", "start", {"topic": "parks"}))
        body = await rec.callback()
        assert body["type"] == 4
        assert body["data"]["content"] == "Round on parks started"
        assert body["data"]["flags"] == p.FLAG_EPHEMERAL
        assert body["data"]["allowed_mentions"] == NONE
        [row] = body["data"]["components"]
        assert row["components"][0]["custom_id"] == "contrib:open:7"
        assert rec.original is not None
        assert rec.original["flags"] & p.FLAG_EPHEMERAL
        assert rec.original["type"] == 20  # CHAT_INPUT_COMMAND reply
        assert rec.attempts[0].query == {"with_response": "1"}


async def test_button_opens_label_modal_and_submit(fake_discord: FakeDiscord, run_client: RunClient) -> None:
    bot = make_bot()
    async with run_client(bot):
        slash = await fake_discord.interact(fake_discord.slash("convene", "start", {"topic": "parks"}))
        await slash.callback()

        click = await fake_discord.interact(fake_discord.click("contrib:open:7"))
        modal = await click.callback()
        assert modal["type"] == 9
        assert modal["data"]["custom_id"] == "contrib:7"
        assert modal["data"]["title"] == "Your contribution"
        [label] = modal["data"]["components"]
        assert label["type"] == p.LABEL
        assert label["label"] == "What do you think?"
        assert label["component"]["type"] == p.TEXT_INPUT
        assert label["component"]["custom_id"] == "text"

        submit = await fake_discord.interact(
            fake_discord.submit_modal(
                "contrib:7", {"text": "more benches"}, message_payload=click.payload["message"]
            )
        )
        answer = await submit.callback()
        assert answer["type"] == 4
        assert answer["data"] == {
            **answer["data"],
            "content": "Received: more benches",
            "flags": p.FLAG_EPHEMERAL,
        }


async def test_defer_then_followups_split_at_2000(fake_discord: FakeDiscord, run_client: RunClient) -> None:
    text = "".join(f"line {i:04d} " + "x" * 40 + "\n" for i in range(100))  # ~5,100 chars

    async def handler(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        for start in range(0, len(text), 2000):
            await interaction.followup.send(text[start : start + 2000], ephemeral=True)

    async with run_client(single_command_bot(handler)):
        rec = await fake_discord.interact(fake_discord.slash("convene", "run"))
        body = await rec.callback()
        assert body == {"type": 5, "data": {"flags": p.FLAG_EPHEMERAL}}
        followups = await rec.wait_followups(3)
        assert [len(m["content"]) for m in followups] == [2000, 2000, len(text) - 4000]
        assert "".join(m["content"] for m in followups) == text
        # Discord: the first follow-up replaces the deferred "thinking" message.
        assert rec.original is not None
        assert followups[0]["id"] == rec.original["id"]
        assert not rec.original["flags"] & p.FLAG_LOADING
        calls = fake_discord.calls_to("POST /webhooks/{app_id}/{token}")
        assert all(c.query["wait"] == "1" for c in calls)


async def test_dynamic_button_works_after_restart(fake_discord: FakeDiscord) -> None:
    first = make_bot()
    async with running_client(fake_discord, first):
        channel = first.get_channel(int(fake_discord.channel["id"]))
        assert isinstance(channel, discord.TextChannel)
        view = discord.ui.View(timeout=None)
        view.add_item(ContributeButton("42"))
        await channel.send("Round 42 is open", view=view)

    second = make_bot()  # a new process: nothing in memory but the registered DynamicItem
    async with running_client(fake_discord, second):
        rec = await fake_discord.interact(fake_discord.click("contrib:open:42"))
        body = await rec.callback()
        assert body["type"] == 9
        assert body["data"]["custom_id"] == "contrib:42"
    assert len(fake_discord.identifies) == 2


async def test_component_update_and_deferred_update(fake_discord: FakeDiscord, run_client: RunClient) -> None:
    class Vote(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"vote:(?P<n>\d+)"):
        def __init__(self, n: int) -> None:
            super().__init__(discord.ui.Button(label=f"{n} votes", custom_id=f"vote:{n}"))
            self.n = n

        @classmethod
        async def from_custom_id(
            cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
        ) -> Vote:
            return cls(int(match["n"]))

        async def callback(self, interaction: discord.Interaction) -> None:
            if self.n >= 1:
                await interaction.response.defer()  # type 6: ack without changing anything
                return
            view = discord.ui.View(timeout=None)
            view.add_item(Vote(self.n + 1))
            await interaction.response.edit_message(content="1 vote", view=view)  # type 7

    bot = discord.Client(**client_kwargs())
    async with run_client(bot):
        bot.add_dynamic_items(Vote)
        channel = bot.get_channel(int(fake_discord.channel["id"]))
        assert isinstance(channel, discord.TextChannel)
        view = discord.ui.View(timeout=None)
        view.add_item(Vote(0))
        sent = await channel.send("0 votes", view=view)

        first = await fake_discord.interact(fake_discord.click("vote:0"))
        assert (await first.callback())["type"] == 7
        stored = fake_discord.messages[str(sent.id)]
        assert stored["content"] == "1 vote"
        assert stored["components"][0]["components"][0]["custom_id"] == "vote:1"

        second = await fake_discord.interact(fake_discord.click("vote:1"))
        assert (await second.callback()) == {"type": 6}


@pytest.mark.parametrize("answer", [{"type": 6}, {"type": 7, "data": {"content": "updated"}}])
async def test_a_click_whose_frame_lost_its_message_id_is_still_answered(
    fake_discord: FakeDiscord, run_client: RunClient, answer: dict[str, Any]
) -> None:
    """Discord always knows which message was clicked, so a (fuzzed) frame without its message's id
    gets its update accepted once: a 500 would make discord.py send it again and read the second
    answer's 40060 ("already acknowledged") as a failure."""
    forged = p.message(
        channel_id=fake_discord.channel["id"],
        author=fake_discord.bot_user,
        components=[p.action_row(p.button("nobody:listens"))],
    )
    payload = fake_discord.click("nobody:listens", forged)
    del payload["message"]["id"]
    async with run_client(discord.Client(**client_kwargs())), aiohttp.ClientSession() as http:
        rec = await fake_discord.interact(payload)
        url = f"{fake_discord.rest_base}/interactions/{rec.id}/{rec.token}/callback"
        async with http.post(url, json=answer) as resp:
            assert resp.status == 204
    assert rec.response == answer
    assert rec.original is not None
    assert rec.original["id"] in fake_discord.messages
    if answer["type"] == 7:
        assert rec.original["content"] == "updated"


# ---------------------------------------------------------------------- reliability


async def test_429_is_retried(fake_discord: FakeDiscord, run_client: RunClient) -> None:
    async def handler(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("ok", ephemeral=True)

    bot = single_command_bot(handler)
    async with run_client(bot):
        fake_discord.fail_next("POST /channels/{channel_id}/messages", retry_after=0.05)
        channel = bot.get_channel(int(fake_discord.channel["id"]))
        assert isinstance(channel, discord.TextChannel)
        msg = await channel.send("hello")
        assert msg.content == "hello"
        assert [c.status for c in fake_discord.calls_to("POST /channels/{channel_id}/messages")] == [429, 200]

        # The interaction webhook path (a separate code path in discord.py) retries too.
        fake_discord.fail_next("POST /interactions/{interaction_id}/{token}/callback", retry_after=0.05)
        rec = await fake_discord.interact(fake_discord.slash("convene", "run"))
        await rec.callback()
        assert [a.status for a in rec.attempts] == [429, 200]


async def test_an_enforced_nonce_returns_the_first_message_instead_of_a_second(
    fake_discord: FakeDiscord, run_client: RunClient
) -> None:
    """Discord: "If another message was created by the same author with the same nonce, that message
    will be returned and no new message will be created" (for a few minutes; the fake keeps
    ``nonce_window`` seconds). discord.py sends ``enforce_nonce`` with every nonce."""
    client = discord.Client(**client_kwargs())
    async with run_client(client):
        channel = client.get_partial_messageable(int(fake_discord.channel["id"]))
        first = await channel.send("Idea 7", nonce="row-1")
        echoes = len(fake_discord.calls)
        again = await channel.send("Idea 7", nonce="row-1")
        assert again.id == first.id
        assert str(again.nonce) == "row-1"
        assert [m["content"] for m in fake_discord.channel_messages(str(channel.id))] == ["Idea 7"]
        assert len(fake_discord.calls) == echoes + 1
        other = await channel.send("Idea 8", nonce="row-2")
        assert other.id != first.id
        # Long after, the nonce is forgotten: the same nonce makes a new message.
        fake_discord.advance(fake_discord.nonce_window + 1)
        later = await channel.send("Idea 7", nonce="row-1")
        assert later.id != first.id
        # A message deleted shortly before: the same nonce is refused (discord.py documents NotFound).
        await later.delete()
        with pytest.raises(discord.NotFound):
            await channel.send("Idea 7", nonce="row-1")
        with pytest.raises(discord.HTTPException) as info:
            await channel.send("x", nonce="n" * 26)
        assert info.value.status == 400


async def test_op7_reconnect_resumes_and_keeps_handling(
    fake_discord: FakeDiscord, run_client: RunClient
) -> None:
    async def handler(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("still here", ephemeral=True)

    resumed = asyncio.Event()
    bot = single_command_bot(handler)

    @bot.event
    async def on_resumed() -> None:
        resumed.set()

    async with run_client(bot):
        first = await fake_discord.wait_connected()
        await fake_discord.reconnect()
        await asyncio.wait_for(resumed.wait(), 3)
        [resume] = fake_discord.resumes
        assert first.session is not None
        assert resume["session_id"] == first.session.id
        assert resume["token"] == "fake-bot-token"
        second = await fake_discord.wait_connected()
        assert second is not first
        assert second.path == "/resume/"  # resume_gateway_url from READY was used
        assert len(fake_discord.identifies) == 1

        rec = await fake_discord.interact(fake_discord.slash("convene", "run"))
        assert (await rec.callback())["data"]["content"] == "still here"


async def test_events_sent_while_reconnecting_are_replayed(
    fake_discord: FakeDiscord, run_client: RunClient
) -> None:
    async def handler(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("late but fine", ephemeral=True)

    async with run_client(single_command_bot(handler)):
        await fake_discord.wait_connected()
        await fake_discord.close_gateway(4000)  # not a clean close: the session stays resumable
        rec = await fake_discord.interact(fake_discord.slash("convene", "run"))  # queued, replayed on RESUME
        assert (await rec.callback())["data"]["content"] == "late but fine"
        assert len(fake_discord.resumes) == 1


# ---------------------------------------------------------------- Discord's rules


async def test_three_second_rule_gives_unknown_interaction(
    fake_discord: FakeDiscord, run_client: RunClient
) -> None:
    fake_discord.interaction_deadline = 0.1  # shrunk from Discord's 3 s
    outcome: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    async def handler(interaction: discord.Interaction) -> None:
        await asyncio.sleep(0.2)
        try:
            await interaction.response.send_message("too late")
        except discord.HTTPException as exc:
            outcome.set_result(exc)
        else:
            outcome.set_result(None)

    async with run_client(single_command_bot(handler)):
        rec = await fake_discord.interact(fake_discord.slash("convene", "run"))
        exc = await asyncio.wait_for(outcome, 3)
        assert isinstance(exc, discord.NotFound)
        assert exc.code == 10062
        assert rec.response is None


async def test_double_ack_library_side_and_from_a_duplicate_process(fake_discord: FakeDiscord) -> None:
    outcomes: list[BaseException | None] = []

    async def handler(interaction: discord.Interaction) -> None:
        try:
            await interaction.response.send_message("first")
            await interaction.response.send_message("second")
        except (discord.HTTPException, discord.InteractionResponded) as exc:
            outcomes.append(exc)

    # Two processes with the same token (a botched deploy) both receive the interaction.
    async with (
        running_client(fake_discord, single_command_bot(handler)),
        running_client(fake_discord, single_command_bot(handler)),
    ):
        rec = await fake_discord.interact(fake_discord.slash("convene", "run"))
        await fake_discord.wait_until(lambda: len(outcomes) == 2, 3, "both handlers")
    assert sorted(type(e).__name__ for e in outcomes) == ["HTTPException", "InteractionResponded"]
    http_exc = next(e for e in outcomes if isinstance(e, discord.HTTPException))
    assert (http_exc.status, http_exc.code) == (400, 40060)
    assert [a.status for a in rec.attempts] == [200, 400]


async def test_followup_after_token_expiry_is_rejected(
    fake_discord: FakeDiscord, run_client: RunClient
) -> None:
    expired = asyncio.Event()
    outcome: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    async def handler(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        await expired.wait()
        try:
            await interaction.followup.send("15 minutes later")
        except discord.HTTPException as exc:
            outcome.set_result(exc)
        else:
            outcome.set_result(None)

    async with run_client(single_command_bot(handler)):
        rec = await fake_discord.interact(fake_discord.slash("convene", "run"))
        await rec.callback()
        fake_discord.advance(15 * 60 + 1)
        expired.set()
        exc = await asyncio.wait_for(outcome, 3)
        assert isinstance(exc, discord.HTTPException)
        assert (exc.status, exc.code) == (401, 50027)


async def test_allowed_mentions_none_recorded_everywhere(
    fake_discord: FakeDiscord, run_client: RunClient
) -> None:
    hostile = f"@everyone @here <@{fake_discord.user['id']}> <@&{fake_discord.guild['id']}>"

    async def handler(interaction: discord.Interaction) -> None:
        await interaction.response.send_message(hostile)
        await interaction.edit_original_response(content=hostile + " (edited)")
        await interaction.followup.send(hostile)
        assert interaction.channel is not None
        await interaction.channel.send(hostile)  # type: ignore[union-attr]

    async with run_client(single_command_bot(handler)):
        rec = await fake_discord.interact(fake_discord.slash("convene", "run"))
        await fake_discord.wait_for_call("POST /channels/{channel_id}/messages")
        assert rec.followups
    sent = fake_discord.sent_messages()
    assert len(sent) == 4
    assert all(body.get("allowed_mentions") == NONE for _, body in sent)
    assert fake_discord.pings() == []


async def test_missing_allowed_mentions_would_ping(fake_discord: FakeDiscord, run_client: RunClient) -> None:
    """The contrast case: discord.py's default (no allowed_mentions) lets @everyone through."""
    client = discord.Client(**client_kwargs(allowed_mentions=None))
    async with run_client(client):
        channel = client.get_channel(int(fake_discord.channel["id"]))
        assert isinstance(channel, discord.TextChannel)
        await channel.send("@everyone look")
    [(call, pings)] = fake_discord.pings()
    assert "allowed_mentions" not in call.json
    assert pings.everyone


@pytest.mark.parametrize(
    ("body", "error_path"),
    [
        ({"content": "x" * 2001}, ["content"]),
        ({"embeds": [{"description": "x"}] * 11}, ["embeds"]),
        ({"embeds": [{"description": "x" * 4000}, {"description": "x" * 2001}]}, ["embeds"]),
        ({"components": [p.action_row(p.button(f"b{i}")) for i in range(6)]}, ["components"]),
        (
            {"components": [p.action_row(*[p.button(f"b{i}") for i in range(6)])]},
            ["components", "0", "components"],
        ),
        (
            {"components": [p.action_row(p.button("x" * 101))]},
            ["components", "0", "components", "0", "custom_id"],
        ),
    ],
    ids=["content", "embed-count", "embed-chars", "rows", "buttons", "custom-id"],
)
async def test_message_limits_invalid_form_body(
    fake_discord: FakeDiscord, body: dict[str, Any], error_path: list[str]
) -> None:
    url = f"{fake_discord.rest_base}/channels/{fake_discord.channel['id']}/messages"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers={"Authorization": f"Bot {fake_discord.token}"}) as resp,
    ):
        assert resp.status == 400
        assert resp.headers["Content-Type"] == "application/json"
        err = await resp.json()
    assert err["code"] == 50035
    node = err["errors"]
    for part in error_path:
        node = node[part]
    assert node["_errors"][0]["code"]


async def test_limits_reach_discord_py_as_http_exceptions(
    fake_discord: FakeDiscord, run_client: RunClient
) -> None:
    """discord.py does not check custom_id length or modal titles itself; the fake does."""
    outcome: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    async def handler(interaction: discord.Interaction) -> None:
        modal = discord.ui.Modal(title="t" * 46, custom_id="m")
        modal.add_item(discord.ui.Label(text="x", component=discord.ui.TextInput(custom_id="x")))
        try:
            await interaction.response.send_modal(modal)
        except discord.HTTPException as exc:
            outcome.set_result(exc)
        else:
            outcome.set_result(None)

    bot = single_command_bot(handler)
    async with run_client(bot):
        channel = bot.get_channel(int(fake_discord.channel["id"]))
        assert isinstance(channel, discord.TextChannel)
        view = discord.ui.View()
        view.add_item(discord.ui.Button(label="x", custom_id="c" * 101))
        with pytest.raises(discord.HTTPException) as info:
            await channel.send("too long id", view=view)
        assert info.value.code == 50035

        rec = await fake_discord.interact(fake_discord.slash("convene", "run"))
        exc = await asyncio.wait_for(outcome, 3)
        assert isinstance(exc, discord.HTTPException)
        assert exc.code == 50035
        assert "title" in exc.text
        assert rec.response is None  # a rejected callback does not count as the ack


async def test_message_content_is_blank_without_the_intent(
    fake_discord: FakeDiscord, run_client: RunClient
) -> None:
    seen: list[discord.Message] = []
    client = discord.Client(**client_kwargs())

    @client.event
    async def on_message(message: discord.Message) -> None:
        seen.append(message)

    async with run_client(client):
        await fake_discord.user_message("secret plans")
        await fake_discord.user_message(f"<@{fake_discord.app_id}> hello bot")
        await fake_discord.wait_until(lambda: len(seen) == 2, 3, "two messages")
    assert [m.content for m in seen] == ["", f"<@{fake_discord.app_id}> hello bot"]


async def test_dm_channel_and_closed_dms(fake_discord: FakeDiscord, run_client: RunClient) -> None:
    client = discord.Client(**client_kwargs())
    async with run_client(client):
        user = discord.Object(int(fake_discord.user["id"]))
        dm = await client.create_dm(user)
        await dm.send("your receipt")
        fake_discord.dms_closed.add(fake_discord.user["id"])
        with pytest.raises(discord.Forbidden) as info:
            await dm.send("again")
        assert info.value.code == 50007
    assert [m["content"] for m in fake_discord.channel_messages(str(dm.id))] == ["your receipt"]


async def test_multipart_uploads_are_parsed_and_kept(
    fake_discord: FakeDiscord, run_client: RunClient
) -> None:
    """discord.py's multipart body (payload_json + files[n]) becomes attachments with the bytes kept;
    a request over the upload limit is refused with 413/40005 as Discord does."""
    bot = make_bot()
    async with run_client(bot):
        channel = bot.get_channel(int(fake_discord.channel["id"]))
        assert isinstance(channel, discord.TextChannel)
        data = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
        file = discord.File(io.BytesIO(data), filename="chart.png", description="a chart")
        sent = await channel.send("with a file", file=file, allowed_mentions=discord.AllowedMentions.none())
        assert [a.filename for a in sent.attachments] == ["chart.png"]
        assert sent.attachments[0].size == len(data)
        stored = fake_discord.messages[str(sent.id)]
        assert fake_discord.attachment_data(stored) == [data]
        assert stored["attachments"][0]["description"] == "a chart"
        [call] = [c for c in fake_discord.calls_to("POST /channels/{channel_id}/messages") if c.files]
        assert call.json["allowed_mentions"] == NONE  # payload_json is parsed like a JSON body
        assert call.files[0]["data"] == data

        huge = discord.File(io.BytesIO(b"\0" * (10 * 1024 * 1024 + 1)), filename="huge.bin")
        with pytest.raises(discord.HTTPException) as info:
            await channel.send(file=huge)
        assert info.value.status == 413
        assert info.value.code == 40005
