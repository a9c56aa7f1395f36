"""The Discord adapter against FakeDiscord: connection, sync, restart, 429, reconnect, Discord's
rules, refusals and bad input."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import discord
import pytest

from adapters.discord.client import ContinueButton, ConveneClient, RoundButton
from adapters.discord.runner import run_discord, sync_commands
from bot.config import ConfigError, DiscordConfig
from bot.service.handlers import build_registry
from tests.adapters.discord.rig import NONE, make_rig
from tests.platform_fakes import discord_payloads as p
from tests.platform_fakes.discord import PRIVILEGED_INTENTS, FakeDiscord
from tests.platform_fakes.discord_client import running_client

# Every subcommand the registry knows exists on Discord too (``mine`` once existed on Slack only).
SUBS = {r.text.name for r in build_registry().subcommands() if r.text}


async def test_identify_with_guilds_intent_only(tmp_path: Path) -> None:
    async with make_rig(tmp_path) as rig, rig.running() as client:
        [identify] = rig.fake.identifies
        assert identify["intents"] == discord.Intents(guilds=True).value
        assert identify["intents"] & PRIVILEGED_INTENTS == 0
        mentions = client.allowed_mentions
        assert isinstance(mentions, discord.AllowedMentions)
        assert dict(mentions.to_dict()) == NONE
        assert client._connection.max_messages is None
        assert not rig.fake.calls_to("PUT /applications/{app_id}/commands")  # syncing is explicit


@pytest.mark.parametrize("guild", [True, False])
async def test_sync_commands(guild: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeDiscord() as fake:
        monkeypatch.setenv("CONVENE_TEST_DISCORD", fake.token)
        config = DiscordConfig(token_env="CONVENE_TEST_DISCORD", api_base_url=fake.rest_base)
        gid = str(fake.guild["id"])
        with fake.patch_discord():  # restores Route.BASE afterwards
            done = await sync_commands(config, gid if guild else None)
        assert done == ([gid] if guild else ["global"])
        [cmd] = fake.guild_commands[gid] if guild else fake.global_commands
        assert cmd["name"] == "convene"
        assert {o["name"] for o in cmd["options"]} == SUBS
        link = next(o for o in cmd["options"] if o["name"] == "link")
        assert link["options"][0]["name"] == "code"
        assert link["options"][0]["required"]
        goal = next(o for o in cmd["options"] if o["name"] == "goal")
        assert goal["options"][0]["name"] == "idea"
        assert goal["options"][0]["type"] == 4  # INTEGER
        assert not goal["options"][0].get("required")
        assert "mine" in SUBS
        assert not fake.identifies  # REST only, no gateway session used up


async def test_missing_token_names_the_variable(tmp_path: Path) -> None:
    async with make_rig(tmp_path) as rig:
        config = DiscordConfig(token_env="CONVENE_NO_SUCH_TOKEN")
        assert "CONVENE_NO_SUCH_TOKEN" not in os.environ
        with pytest.raises(ConfigError, match="CONVENE_NO_SUCH_TOKEN"):
            await run_discord(rig.app, config, asyncio.Event())
        with pytest.raises(ConfigError, match="CONVENE_NO_SUCH_TOKEN"):
            await sync_commands(config)


async def test_run_discord_with_overrides_until_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with make_rig(tmp_path) as rig:
        monkeypatch.setenv("CONVENE_TEST_DISCORD", rig.fake.token)
        config = DiscordConfig(
            token_env="CONVENE_TEST_DISCORD",
            api_base_url=rig.fake.rest_base,
            gateway_url=rig.fake.gateway_url,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(run_discord(rig.app, config, stop, guild_ready_timeout=0.01))
        await rig.fake.wait_connected()
        rec = await rig.slash("alice", "help")
        assert await rig.reply(rec)
        stop.set()
        await asyncio.wait_for(task, 10)
        assert rig.fake.connections[-1].ws.closed


async def test_button_works_after_restart(tmp_path: Path, handled_by: dict[str, str]) -> None:
    async with make_rig(tmp_path) as rig:
        async with rig.running():
            rid = await rig.start_round()
        async with rig.running() as second:
            rec = await rig.click("alice", f"cv:{rid}:join")  # a message the first client posted
            modal = await rig.modal(rec)
            assert modal["custom_id"] == f"cv:{rid}:form:join"
        # Decoded by the DynamicItem the new client registered, not by anything kept in memory.
        assert handled_by == {f"cv:{rid}:join": "RoundButton"}
        # A modal opened before a restart is still accepted after it.
        async with rig.running() as third:
            assert third is not second
            sub = await rig.submit("alice", f"cv:{rid}:form:join", {"sector": ["resident"]})
            assert "Cleaner river" in await rig.reply(sub)
            await rig.contribute("alice", rid, "Plant reeds")
            await rig.confirmed(await rig.slash("owner", "next"), "Cleaner river", "vote")
            card = await rig.open_deck("alice", rid)
        async with rig.running():  # a deck card shown before this restart
            rec = await rig.press("alice", "Agree", card)
            assert rec.response is not None
            assert rec.response["type"] == 7
            assert "Your vote on Idea 1 is recorded" in (rig.card("alice") or {})["content"]
        assert handled_by[f"cv:{rid}:v:1:a:-"] == "RoundButton"


async def test_clicks_are_decoded_by_the_dynamic_items(tmp_path: Path, handled_by: dict[str, str]) -> None:
    async with make_rig(tmp_path) as rig, rig.running() as client:
        registered = client._connection._view_store._dynamic_items.values()
        assert set(registered) == {RoundButton, ContinueButton}
        rid = await rig.start_round()
        await rig.join("alice", rid)  # a form verb: the callback answers with the modal
        await rig.contribute("alice", rid, "Plant reeds")
        await rig.confirmed(await rig.slash("owner", "next"), "Cleaner river", "vote")
        await rig.join("bob", rid)
        await rig.open_deck("bob", rid)  # a card verb: answered with the card as the first response
        rec = await rig.press("bob", "Skip")
        assert rec.response is not None
        assert rec.response["type"] == 7
        assert handled_by == {
            f"cv:{rid}:join": "RoundButton",
            f"cv:{rid}:contribute": "RoundButton",
            f"cv:{rid}:deck": "RoundButton",
            f"cv:{rid}:dk:1:s:-": "RoundButton",
        }
        # Exactly one path answered each click: one callback, no double acknowledgement.
        assert all(len(r.attempts) == 1 for r in rig.fake.interactions.values())


async def test_a_click_discord_py_drops_is_still_answered(tmp_path: Path, handled_by: dict[str, str]) -> None:
    """discord.py skips a DynamicItem whose component is missing from the clicked message; the
    ``on_interaction`` fallback answers it anyway (through the same core call)."""
    async with make_rig(tmp_path) as rig, rig.running():
        rid = await rig.start_round()
        await rig.join("alice", rid)
        await rig.contribute("alice", rid, "Plant reeds")
        await rig.confirmed(await rig.slash("owner", "next"), "Cleaner river", "vote")
        vote = f"cv:{rid}:v:1:a:-"
        bare = p.message(  # alice's deck card, as discord.py receives it without its components
            channel_id=rig.channel["id"],
            guild_id=rig.channel["guild_id"],
            author=rig.fake.bot_user,
            flags=p.FLAG_EPHEMERAL,
            interaction_metadata={"id": p.snowflake(), "type": 3, "user": rig.users["alice"]},
        )
        payload = rig.fake.click(vote, bare, user=rig.users["alice"])
        rec = await rig.fake.interact(payload)
        body = await rec.callback()
        assert body["type"] == 7
        assert "Your vote on Idea 1 is recorded" in body["data"]["content"]
        assert handled_by[vote] == "on_interaction"
        assert len(rec.attempts) == 1


async def test_rate_limited_post_is_retried(tmp_path: Path) -> None:
    async with make_rig(tmp_path) as rig, rig.running():
        rig.fake.fail_next("POST /channels/{channel_id}/messages", times=1, retry_after=0.2)
        await rig.start_round()
        posts = rig.fake.calls_to("POST /channels/{channel_id}/messages")
        assert [c.status for c in posts[:2]] == [429, 200]


async def test_rate_limited_callback_is_retried(tmp_path: Path) -> None:
    async with make_rig(tmp_path) as rig, rig.running():
        rig.fake.fail_next("POST /interactions/{interaction_id}/{token}/callback", retry_after=0.1)
        rec = await rig.slash("alice", "help")
        assert await rig.reply(rec)
        assert [c.status for c in rec.attempts] == [429, 200]


async def test_reconnect_resumes_and_keeps_working(tmp_path: Path) -> None:
    async with make_rig(tmp_path) as rig, rig.running():
        rid = await rig.start_round()
        await rig.fake.reconnect()
        await rig.fake.wait_until(lambda: rig.fake.resumes, 5, "RESUME")
        await rig.fake.wait_connected()
        assert len(rig.fake.identifies) == 1
        await rig.join("bob", rid)


async def test_first_response_within_three_seconds_even_when_the_core_is_slow(tmp_path: Path) -> None:
    async with make_rig(tmp_path, interaction_deadline=0.5) as rig, rig.running() as client:
        rid = await rig.start_round()
        await rig.join("alice", rid)
        await rig.contribute("alice", rid, "Plant reeds")
        await rig.confirmed(await rig.slash("owner", "next"), "Cleaner river", "vote")
        card = await rig.open_deck("alice", rid)
        core = client.core
        assert core is not None
        real_press = core.press

        async def slow_press(*args: Any, **kw: Any) -> Any:
            await asyncio.sleep(0.8)
            return await real_press(*args, **kw)

        core.press = slow_press  # type: ignore[method-assign]
        client.core_timeout = 0.2
        rec = await rig.press("alice", "Agree", card)
        assert rec.response is not None
        assert rec.response["type"] == 6  # the card clicked stays until its update comes
        await rig.fake.wait_until(
            lambda: "Your vote on Idea 1 is recorded" in (rig.card("alice") or {}).get("content", ""),
            5,
            "the card, updated through the original response",
        )
        assert (rig.card("alice") or {})["flags"] & p.FLAG_EPHEMERAL
        rec = await rig.click("alice", f"cv:{rid}:deck")  # a new card, slow: "thinking" first
        assert (await rec.callback())["type"] == 5
        await rig.fake.wait_until(
            lambda: "voted on every idea" in (rec.original or {}).get("content", ""), 5, "the new card"
        )
        # A form must come from the core first: when that is too slow, a clear message in time.
        rec = await rig.click("bob", f"cv:{rid}:join")
        body = await rec.callback()
        assert body["type"] == 4
        assert body["data"]["flags"] & p.FLAG_EPHEMERAL
        assert body["data"]["content"] == rig.error_text("busy_try_again")
        for r in rig.fake.interactions.values():
            first = r.attempts[0]
            assert first.status < 300
            assert first.at - r.dispatched_at < 0.5


async def test_non_convener_next_is_refused_privately(tmp_path: Path) -> None:
    async with make_rig(tmp_path) as rig, rig.running():
        rid = await rig.start_round()
        await rig.join("alice", rid)
        await rig.contribute("alice", rid, "Plant reeds")
        before = len(rig.public())
        rec = await rig.slash("alice", "next")
        assert await rig.reply(rec) == rig.error_text("not_convener")
        await asyncio.sleep(0.2)
        assert len(rig.public()) == before
        assert await rig.scalar("select phase from rounds") == "contribute"


async def test_buttons_for_missing_rounds_and_unknown_ids(tmp_path: Path, handled_by: dict[str, str]) -> None:
    async with make_rig(tmp_path) as rig, rig.running():
        gone, unknown, malformed = f"cv:{'ab' * 16}:v:1:a:-", "somebody-elses-button", "cv:!!:x"
        msg = p.message(
            channel_id=rig.channel["id"],
            guild_id=rig.channel["guild_id"],
            author=rig.fake.bot_user,
            content="old",
            components=[
                {
                    "type": 1,
                    "components": [
                        {"type": 2, "style": 1, "label": "x", "custom_id": c}
                        for c in (gone, unknown, malformed)
                    ],
                }
            ],
        )
        rig.fake.messages[msg["id"]] = msg
        rec = await rig.click(
            "alice", gone
        )  # a deck vote, refused privately: never in place of a public post
        body = await rec.callback()
        assert body["type"] == 4
        assert body["data"]["flags"] & p.FLAG_EPHEMERAL
        assert body["data"]["content"] == rig.error_text("round_gone")
        assert rig.fake.messages[msg["id"]]["content"] == "old"
        for cid in (unknown, malformed):
            rec = await rig.click("alice", cid)
            assert await rig.reply(rec) == rig.error_text("unknown_button")
        # A well-formed id goes through the DynamicItem (the core finds no round); ids the
        # templates reject are answered by the on_interaction fallback, never left silent.
        assert handled_by == {gone: "RoundButton", unknown: "on_interaction", malformed: "on_interaction"}
        # A "continue" button with nonsense after its prefix: refused too.
        bad_page = "cvp:9:nonsense"
        odd = p.message(
            channel_id=rig.channel["id"],
            guild_id=rig.channel["guild_id"],
            author=rig.fake.bot_user,
            content="old",
            components=[
                {"type": 1, "components": [{"type": 2, "style": 1, "label": "x", "custom_id": bad_page}]}
            ],
        )
        rig.fake.messages[odd["id"]] = odd
        rec = await rig.click("alice", bad_page)
        assert await rig.reply(rec) == rig.error_text("unknown_button")
        assert handled_by[bad_page] == "on_interaction"
        rig.fake.messages.pop(odd["id"])
        # A paged-form button with nonsense in it, and a modal nobody knows.
        rec = await rig.submit("alice", "cv:-:form:nonsense", {"x": "y"})
        assert await rig.reply(rec) == rig.error_text("unknown_form")
        assert [m["id"] for m in rig.public()] == [msg["id"]]  # nothing posted in public


async def test_unknown_subcommand_gets_a_clear_message(tmp_path: Path) -> None:
    async with make_rig(tmp_path) as rig, rig.running():
        rec = await rig.slash("alice", "frobnicate")
        assert await rig.reply(rec) == rig.error_text("malformed_request")


async def test_modal_with_empty_or_oversized_fields_changes_nothing(tmp_path: Path) -> None:
    async with make_rig(tmp_path) as rig, rig.running():
        rec = await rig.slash("owner", "start")
        modal = await rig.modal(rec)
        sub = await rig.submit("owner", modal["custom_id"], {"title": "", "purpose": "p" * 5000})
        text = await rig.reply(sub)
        assert text.startswith(rig.error_text("invalid_form", fields={}, kept={}).splitlines()[0])
        assert await rig.scalar("select count(*) from rounds") == 0

        rid = await rig.start_round()
        await rig.join("alice", rid)
        for value in ("", "x" * 1500):
            modal = await rig.modal(await rig.click("alice", f"cv:{rid}:contribute"))
            text = await rig.reply(await rig.submit("alice", modal["custom_id"], {"text": value}))
            assert "nothing was saved" in text
        assert await rig.scalar("select count(*) from ideas") == 0


async def test_goal_slash_command_with_idea_option(tmp_path: Path) -> None:
    async with make_rig(tmp_path) as rig, rig.running():
        rid = await rig.start_round()
        await rig.join("alice", rid)
        await rig.contribute("alice", rid, "Plant reeds")
        rec = await rig.slash("alice", "goal")
        assert await rig.reply(rec)  # not a convener (and not the goals phase): refused privately
        await rig.confirmed(await rig.slash("owner", "next"), "Cleaner river", "vote")
        await rig.confirmed(await rig.slash("owner", "next"), "Cleaner river", "goals")
        modal = await rig.modal(await rig.slash("owner", "goal", {"idea": 1}))
        idea = modal["components"][0]["component"]
        assert idea["custom_id"] == "idea"
        assert idea["value"] == "1"
        # Page 2 submitted without page 1 (e.g. after a restart): a clear error, nothing saved.
        page2 = modal["custom_id"].replace("cvp:1:", "cvp:2:")
        text = await rig.reply(await rig.submit("owner", page2, {"baseline": "0"}))
        assert "nothing was saved" in text
        assert await rig.scalar("select count(*) from goals") == 0


async def test_conveners_by_user_and_role(tmp_path: Path) -> None:
    async with make_rig(tmp_path) as rig:
        client: ConveneClient = rig.client()
        cfg = client.config.conveners
        assert cfg.user_ids == [rig.users["owner"]["id"]]
        async with rig.running():
            rec = await rig.slash("maya", "start")
            assert (await rec.callback())["type"] == 9
            rec = await rig.slash("bob", "start")
            assert await rig.reply(rec) == rig.error_text("not_convener")


async def test_storage_failure_and_bugs_become_clear_private_messages(tmp_path: Path) -> None:
    from bot.service.core import ServiceUnavailable

    async with make_rig(tmp_path) as rig, rig.running() as client:
        core = client.core
        assert core is not None

        async def down(*args: Any, **kw: Any) -> None:
            raise ServiceUnavailable("disk full")

        async def bug(*args: Any, **kw: Any) -> None:
            raise RuntimeError("boom")

        core.handle = down  # type: ignore[method-assign]
        rec = await rig.slash("alice", "status")
        assert await rig.reply(rec) == rig.error_text("service_unavailable")
        core.handle = bug  # type: ignore[method-assign]
        rec = await rig.slash("alice", "status")
        assert await rig.reply(rec) == rig.error_text("internal_error")
        assert not rig.public()


async def test_sharded_client_when_shard_count_is_set(tmp_path: Path) -> None:
    from adapters.discord.client import ShardedConveneClient
    from adapters.discord.runner import make_client

    async with make_rig(tmp_path) as rig:
        # One shard keeps the test fast (discord.py waits 5 s between IDENTIFYs of one bucket).
        config = replace(rig.app.config.discord, shard_count=1)
        client = make_client(rig.app, config, guild_ready_timeout=0.01)
        assert isinstance(client, ShardedConveneClient)
        assert client.shard_count == 1
        async with running_client(rig.fake, client):
            assert [i["shard"] for i in rig.fake.identifies] == [[0, 1]]
            rec = await rig.slash("alice", "help")
            assert await rig.reply(rec)


async def test_cancel_is_confirmed_privately_and_nothing_is_deleted(tmp_path: Path) -> None:
    async with make_rig(tmp_path) as rig, rig.running():
        await rig.start_round()
        await rig.confirmed(await rig.slash("maya", "cancel"), "Cleaner river", "cancelled")
        assert await rig.scalar("select phase from rounds") == "cancelled"
        assert not rig.fake.calls_to("DELETE /webhooks/{app_id}/{token}/messages/{message_id}")
