"""DiscordChatPort and rendering: limits, mentions that never fire, private replies never public."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.discord import render
from adapters.discord.port import DiscordChatPort, reply_handle
from bot.forms import Form, FormField
from bot.messages import Attachment, Block, Button, Rendered
from bot.ports import DeliveryError
from bot.refs import ConversationRef, Platform
from tests.adapters.discord.rig import NONE, make_rig
from tests.platform_fakes import discord_payloads as p

SUPPRESS_EMBEDS = 1 << 2

INJECTIONS = [
    "@everyone look",
    "@here now",
    "hi <@123> and <@!123456789012345678>",
    "role <@&456> ping",
    "[totally safe](https://evil.example/phish)",
    "**bold** __under__ ~~strike~~ `code` ||spoiler||",
    "# Big heading",
    "> quoted\n-# small print",
    "<#789> channel",
]


def test_escape_makes_mentions_and_markdown_inert() -> None:
    for raw in INJECTIONS:
        out = render.escape(raw)
        assert "@everyone" not in out
        assert "@here" not in out
        assert "<@1" not in out
        assert "<@!" not in out
        assert "<@&" not in out
        assert "<#7" not in out
        assert "](" not in out or "\\[" in out
    assert render.escape("**bold**") == "\\*\\*bold\\*\\*"


def test_chunking_respects_discord_limits() -> None:
    long_text = "\n".join(f"line {i} " + "x" * 50 for i in range(100))  # ~6,000 characters
    buttons = tuple(Button(f"cv:r:v:{i}:a", f"b{i}") for i in range(32))
    msg = Rendered(
        (
            Block("head"),
            Block(long_text, buttons[:4]),
            *(Block(f"idea {i}", (b,)) for i, b in enumerate(buttons[4:])),
        )
    )
    chunks = render.chunk(msg)
    assert all(len(c.content) <= 2000 for c in chunks)
    assert all(len(c.rows) <= 5 and all(len(r) <= 5 for r in c.rows) for c in chunks)
    sent = [b.action_id for c in chunks for r in c.rows for b in r]
    assert sent == [b.action_id for b in buttons]
    assert "".join(c.content for c in chunks).count("line ") == 100
    # The long block's buttons travel with its last piece.
    holder = next(c for c in chunks if any(b.action_id == buttons[0].action_id for r in c.rows for b in r))
    assert "line 99" in holder.content


def test_goal_sized_form_becomes_two_modals_and_short_forms_show_their_intro() -> None:
    fields = tuple(FormField(f"f{i}", f"Field {i} " + "y" * 60) for i in range(10))
    pages = render.form_pages(Form("cv:r:form:goal", "Set a goal", "Save", "intro", fields))
    assert [len(pg.fields) for pg in pages] == [5, 5]
    assert not any(pg.intro for pg in pages)
    [one] = render.form_pages(Form("cv:r:form:join", "Join", "Join", "the charter", fields[:1]))
    assert one.intro == "the charter"
    modal = render.FormModal("t" * 80, "cv:r:form:goal", pages[0], {})
    data = modal.to_dict()
    assert len(data["title"]) <= 45
    assert all(c["type"] == 18 and len(c["label"]) <= 45 for c in data["components"])


async def test_injection_matrix_is_inert_in_every_message(tmp_path: Path) -> None:
    async with make_rig(tmp_path) as rig, rig.running():
        rid = await rig.start_round(title="@everyone <@&456> round")
        await rig.join("alice", rid)
        await rig.join("bob", rid)
        for i, text in enumerate(INJECTIONS):
            await rig.contribute("alice" if i % 2 else "bob", rid, text) if i < 6 else None
        await rig.confirmed(await rig.slash("owner", "next"), "@everyone <@&456> round", "vote")
        await rig.wait_public(lambda m: any(c.endswith(":deck") for c in rig.buttons(m)))
        await rig.settle()
        public = "\n".join(m["content"] for m in rig.public())
        assert "@\u200beveryone" in public
        assert "<@\u200b&456>" in public
        assert "@everyone" not in public
        assert "@here" not in public
        assert "<@&456>" not in public
        assert "\\[totally safe]" in public
        assert "\\*\\*bold\\*\\*" in public
        sent = rig.fake.sent_messages()
        assert sent
        for call, body in sent:
            assert body.get("allowed_mentions") == NONE, (call.route, body)
            if call.route == "POST /channels/{channel_id}/messages":
                assert int(body.get("flags") or 0) & SUPPRESS_EMBEDS
        assert not rig.fake.pings()


async def test_private_reply_falls_back_to_a_dm_never_public(tmp_path: Path) -> None:
    async with make_rig(tmp_path) as rig, rig.running() as client:
        port: DiscordChatPort = rig.port
        to = ConversationRef(Platform.DISCORD, str(rig.channel["guild_id"]), str(rig.channel["id"]))
        alice = str(rig.users["alice"]["id"])
        msg = Rendered((Block("just for you", (Button("cv:r:mine", "Mine"),)),))
        before = len(rig.public())
        await port.post_private(to, alice, msg, None)
        # An expired token (or any unknown one): Discord answers 401/404, the DM takes over.
        rec = await rig.slash("alice", "help")
        await rig.reply(rec)
        rig.fake.advance(16 * 60)
        await port.post_private(to, alice, msg, reply_handle(client.application_id or 0, rec.token))
        await port.post_private(to, alice, msg, reply_handle(client.application_id or 0, "not-a-token"))
        dms = rig.fake.calls_to("POST /users/@me/channels")
        assert dms
        assert all(c.json["recipient_id"] in (alice, int(alice)) for c in dms)
        dm_posts = [
            c
            for c in rig.fake.calls_to("POST /channels/{channel_id}/messages")
            if c.path != f"/channels/{rig.channel['id']}/messages"
        ]
        assert len(dm_posts) == 3
        assert all(c.status == 200 for c in dm_posts)
        expired = [c for c in rig.fake.calls_to("POST /webhooks/{app_id}/{token}") if c.status >= 400]
        assert [c.status for c in expired] == [401, 404]
        assert len(rig.public()) == before
        # DMs closed: a permanent failure, never retried and never posted publicly.
        rig.fake.dms_closed.add(alice)
        with pytest.raises(DeliveryError) as err:
            await port.post_private(to, alice, msg, None)
        assert err.value.permanent


async def test_post_to_unknown_channel_is_permanent(tmp_path: Path) -> None:
    async with make_rig(tmp_path) as rig, rig.running():
        to = ConversationRef(Platform.DISCORD, "1", "424242")
        with pytest.raises(DeliveryError) as err:
            await rig.port.post(to, Rendered((Block("x"),)))
        assert err.value.permanent


async def test_long_post_is_split_and_buttons_kept(tmp_path: Path) -> None:
    async with make_rig(tmp_path) as rig, rig.running():
        to = ConversationRef(Platform.DISCORD, str(rig.channel["guild_id"]), str(rig.channel["id"]))
        text = "word " * 1000
        first = await rig.port.post(to, Rendered((Block(text, (Button("cv:r:join", "Join", "primary"),)),)))
        posts = [c for c in rig.fake.calls_to("POST /channels/{channel_id}/messages") if c.status == 200]
        assert len(posts) == 3
        assert posts[0].response["id"] == first
        assert all(len(c.json["content"]) <= 2000 for c in posts)
        assert posts[-1].json["components"][0]["components"][0]["custom_id"] == "cv:r:join"
        await rig.port.edit(to, first, Rendered((Block("short now"),)))
        assert rig.fake.messages[first]["content"] == "short now"


async def test_a_post_repeated_with_its_key_shows_once_chunk_by_chunk(tmp_path: Path) -> None:
    async with make_rig(tmp_path) as rig, rig.running():
        to = ConversationRef(Platform.DISCORD, str(rig.channel["guild_id"]), str(rig.channel["id"]))
        long = Rendered((Block("word " * 1000),))
        key = "0123456789abcdef0123"  # an outbox row's nonce: 20 characters
        first = await rig.port.post(to, long, key=key)
        again = await rig.port.post(to, long, key=key)  # the relay's re-send after a crash
        assert again == first
        assert len(rig.public()) == 3, "each of the three chunks once"
        sent = [c.json for c in rig.fake.calls_to("POST /channels/{channel_id}/messages")]
        assert all(body["enforce_nonce"] and len(body["nonce"]) <= 25 for body in sent)
        assert len({body["nonce"] for body in sent}) == 3
        alice = str(rig.users["alice"]["id"])
        yours = Rendered((Block("yours"),))
        dm = await rig.port.send_direct(to.workspace_id, alice, yours, key="k" * 20)
        assert await rig.port.send_direct(to.workspace_id, alice, yours, key="k" * 20) == dm


PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


async def test_images_go_with_the_first_message_of_every_kind_of_send(tmp_path: Path) -> None:
    async with make_rig(tmp_path) as rig, rig.running() as client:
        to = ConversationRef(Platform.DISCORD, str(rig.channel["guild_id"]), str(rig.channel["id"]))
        alice = str(rig.users["alice"]["id"])
        image = Attachment("consensus.png", PNG)
        long = Rendered((Block("word " * 1000),), image=image)
        first = await rig.port.post(to, long)
        posts = [c for c in rig.fake.calls_to("POST /channels/{channel_id}/messages") if c.status == 200]
        assert [len(c.files) for c in posts] == [1, 0, 0]
        assert rig.fake.attachment_data(rig.fake.messages[first]) == [PNG]
        # A direct message and an ephemeral follow-up carry it too.
        dm = await rig.port.send_direct(to.workspace_id, alice, Rendered((Block("yours"),), image=image))
        assert rig.fake.attachment_data(rig.fake.messages[dm]) == [PNG]
        rec = await rig.slash("alice", "help")
        await rig.reply(rec)
        handle = reply_handle(client.application_id or 0, rec.token)
        await rig.port.post_private(to, alice, Rendered((Block("private"),), image=image), handle)
        [_, followup] = await rec.wait_followups(2)
        assert followup["flags"] & p.FLAG_EPHEMERAL
        assert rig.fake.attachment_data(followup) == [PNG]
        # An edit with an image replaces the old one; without one, the attachment stays.
        other = Attachment("other.png", PNG + b"x")
        await rig.port.edit(to, first, Rendered((Block("edited"),), image=other))
        assert rig.fake.attachment_data(rig.fake.messages[first]) == [PNG + b"x"]
        await rig.port.edit(to, first, Rendered((Block("again"),)))
        assert rig.fake.attachment_data(rig.fake.messages[first]) == [PNG + b"x"]
        for _call, body in rig.fake.sent_messages():
            assert body.get("allowed_mentions") == NONE


async def test_an_image_over_the_upload_limit_is_left_out(tmp_path: Path) -> None:
    from adapters.discord import port as port_module

    async with make_rig(tmp_path) as rig, rig.running():
        to = ConversationRef(Platform.DISCORD, str(rig.channel["guild_id"]), str(rig.channel["id"]))
        big = Attachment("huge.png", PNG + b"\0" * port_module.MAX_FILE)
        mid = await rig.port.post(to, Rendered((Block("the text still goes"),), image=big))
        assert rig.fake.messages[mid]["content"] == "the text still goes"
        assert not rig.fake.messages[mid]["attachments"]


async def test_port_before_connect_is_offline_not_a_failed_attempt() -> None:
    port = DiscordChatPort()
    with pytest.raises(DeliveryError) as err:
        await port.post(ConversationRef(Platform.DISCORD, "1", "2"), Rendered((Block("x"),)))
    assert not err.value.permanent
    assert err.value.offline
    assert p.FLAG_EPHEMERAL == 64


def test_acks_forget_tokens_after_fifteen_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters.discord import port as port_module

    now = [1000.0]
    monkeypatch.setattr(port_module.time, "monotonic", lambda: now[0])
    acks = port_module.Acks()
    acks.begin("old")
    now[0] += 60
    acks.begin("newer")
    now[0] += port_module.TOKEN_TTL - 30  # "old" is past 15 minutes, "newer" is not
    assert acks.expired("old")
    acks.begin("latest")
    assert list(acks._started) == ["newer", "latest"]
    assert set(acks._events) == {"newer", "latest"}
    assert not acks.expired("latest")
