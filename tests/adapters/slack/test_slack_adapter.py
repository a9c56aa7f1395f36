"""The Slack adapter's edges: refusals, modal errors, redeliveries, 429s, signatures, injection,
Block Kit limits and Socket Mode. Real signed HTTP into bolt, real slack_sdk calls to the fake."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from adapters.slack.app import create_bolt_app
from adapters.slack.port import SlackChatPort, make_client, render_messages
from bot.messages import Block, Button, Rendered
from bot.ports import DeliveryError
from bot.refs import ConversationRef, Platform
from bot.sanitize import display_name, one_line
from tests.adapters.slack.rig import CHANNEL, USERS, Rig, rig, seen_text
from tests.hostile_text import FRAGMENTS, slack_problems
from tests.platform_fakes.markup import slack_reading
from tests.platform_fakes.slack import FakeSlackWebAPI, signed_headers

TO = ConversationRef(Platform.SLACK, "T0CONVENE", CHANNEL)


async def started(r: Rig, joiners: tuple[str, ...] = ("alice",)) -> None:
    await r.form("maya", "start", {"title": "Round", "purpose": "Purpose", "template": "standard"})
    for who in joiners:
        await r.form(who, "join", {"sector": "resident"})


async def test_unknown_subcommand_gets_help_privately(fake_slack: FakeSlackWebAPI, tmp_path: Path) -> None:
    async with rig(fake_slack, tmp_path) as r:
        resp = await r.command("alice", "frobnicate")
        assert resp.body == b""  # a bare ack
        assert r.ephemerals("alice")
        assert "/convene" in r.ephemerals_text("alice")
        assert not r.fake.calls("chat.postMessage")


async def test_non_convener_next_refused_privately(fake_slack: FakeSlackWebAPI, tmp_path: Path) -> None:
    async with rig(fake_slack, tmp_path) as r:
        await started(r)
        posts = len(r.fake.calls("chat.postMessage"))
        before = len(r.ephemerals("alice"))
        await r.command("alice", "next")
        assert len(r.ephemerals("alice")) == before + 1
        assert len(r.fake.calls("chat.postMessage")) == posts
        assert not r.fake.calls("chat.update")


async def test_a_convener_id_from_another_workspace_is_nobody(
    fake_slack: FakeSlackWebAPI, tmp_path: Path
) -> None:
    """Single-token mode: the configured conveners are the token's workspace's. The same user id
    arriving from another team (a shared channel, another installation) convenes nothing."""
    async with rig(fake_slack, tmp_path) as r:
        opened = len(r.fake.calls("views.open"))
        await r.command("maya", "start", team_id="T0ELSEWHERE")
        assert len(r.fake.calls("views.open")) == opened, "no start form for another workspace's Maya"
        assert "convener" in r.ephemerals_text("maya").lower()
        await r.command("maya", "start")
        assert len(r.fake.calls("views.open")) == opened + 1


async def test_usergroup_convener(fake_slack: FakeSlackWebAPI, tmp_path: Path) -> None:
    fake_slack.stub("usergroups.users.list", {"ok": True, "users": ["U0MAYA"]})
    async with rig(fake_slack, tmp_path, usergroup_ids=["S0CONV"]) as r:
        await started(r)
        assert r.fake.calls("usergroups.users.list")
        await r.command("alice", "next")
        await r.command("maya", "status")
        assert len(r.fake.calls("usergroups.users.list")) == 1  # cached


async def test_contribute_with_text_refused(fake_slack: FakeSlackWebAPI, tmp_path: Path) -> None:
    async with rig(fake_slack, tmp_path) as r:
        await started(r)
        await r.command("alice", "contribute my secret idea")
        assert "my secret idea" not in r.public_text()
        assert not any(
            c.view and c.view["callback_id"].endswith(":contribute") for c in r.fake.calls("views.open")
        )
        assert r.ephemerals("alice")


async def test_goal_modal_inline_errors(fake_slack: FakeSlackWebAPI, tmp_path: Path) -> None:
    async with rig(fake_slack, tmp_path) as r:
        await started(r)
        await r.form("alice", "contribute", {"text": "an idea"})
        await r.command("maya", "next")
        await r.command("maya", "next")
        await r.command("maya", "goal")
        view = r.last_view()
        bad = {
            "idea": "99",
            "title": "T",
            "outcome": "O",
            "metric": "M",
            "unit": "u",
            "baseline": "lots",
            "target": "5",
            "deadline": "2027-01-01",
            "pilot": "no",
        }
        resp = await r.submit("maya", view, bad)
        assert resp.status == 200
        body = resp.json()
        assert body["response_action"] == "errors"
        assert set(body["errors"]) == {"baseline"}
        resp = await r.submit("maya", view, {**bad, "baseline": "4"})
        assert resp.json()["errors"].keys() == {"idea"}  # unknown idea number, checked in the core
        resp = await r.submit("maya", view, {**bad, "baseline": "4", "idea": "1"})
        assert resp.body == b""
        assert "**" not in r.public_text()


async def test_redeliveries_handled_once(fake_slack: FakeSlackWebAPI, tmp_path: Path) -> None:
    async with rig(fake_slack, tmp_path) as r:
        await started(r, ("alice", "bob"))
        # the same slash command delivered twice (same trigger_id): one modal
        inbound = r.fake.payloads.slash_command(text="contribute", user_id=USERS["alice"], user_name="alice")
        opened = len(r.fake.calls("views.open"))
        assert (await r.send(inbound)).status == 200
        assert (await r.send(inbound)).status == 200
        assert len(r.fake.calls("views.open")) == opened + 1
        # the same modal submitted twice: one idea
        view = r.last_view()
        sub = r.fake.payloads.view_submission(
            view["callback_id"],
            {"text": {"text": "once only"}},
            private_metadata=view["private_metadata"],
            user_id=USERS["alice"],
            user_name="alice",
            view_id="V0SAME",
        )
        await r.send(sub)
        await r.send(sub)
        await r.command("alice", "mine")
        assert r.ephemerals_text("alice").count("once only") == 1
        # an event redelivered with the same event_id: one reply
        ev = r.fake.payloads.message_event(
            "hi", user_id=USERS["bob"], channel_id="D0BOB", channel_type="im", event_id="Ev1"
        )
        retry = r.fake.payloads.message_event(
            "hi", user_id=USERS["bob"], channel_id="D0BOB", channel_type="im", event_id="Ev1", retry_num=1
        )
        assert (await r.send(ev)).status == 200
        resp = await r.send(retry)
        assert resp.status == 200
        assert {k.lower(): v for k, v in resp.headers.items()}.get("x-slack-no-retry") == "1"
        dm = [c for c in r.fake.calls("chat.postEphemeral") if c["channel"] == "D0BOB"]
        assert len(dm) == 1
        assert "direct messages" in seen_text(dm[0].blocks)


async def test_429_on_post_message_honoured(fake_slack: FakeSlackWebAPI, tmp_path: Path) -> None:
    async with rig(fake_slack, tmp_path) as r:
        fake_slack.fail_next("chat.postMessage", retry_after=1)
        started_at = time.monotonic()
        await started(r, ())
        calls = r.fake.calls("chat.postMessage")
        assert [c.status for c in calls[:2]] == [429, 200]
        assert calls[1].at - calls[0].at >= 0.9
        assert time.monotonic() - started_at >= 0.9
    # A long Retry-After is not slept through: it goes back to the outbox with retry_after.
    port = SlackChatPort(make_client(fake_slack.bot_token, fake_slack.base_url))
    fake_slack.fail_next("chat.postMessage", retry_after=30)
    with pytest.raises(DeliveryError) as err:
        await port.post(TO, Rendered((Block("hi"),)))
    assert err.value.retry_after == 30
    assert not err.value.permanent
    before = len(fake_slack.calls("chat.postMessage"))
    for kw in ({"error": "not_in_channel"}, {"status": 401}, {"status": 403}, {"error": "token_revoked"}):
        fake_slack.fail_next("chat.postMessage", **kw)  # type: ignore[arg-type]
        with pytest.raises(DeliveryError) as err:
            await port.post(TO, Rendered((Block("hi"),)))
        assert err.value.permanent, kw
    await port.aclose()
    assert (
        len(fake_slack.calls("chat.postMessage")) == before + 4
    )  # permanent errors: one call each, no retry


@pytest.mark.parametrize(
    "tamper",
    [
        "bad_signature",
        "no_signature",
        "no_timestamp",
        "old",
        "future",
        "huge_timestamp",
        "junk_timestamp",
        "unicode_signature",
        "wrong_secret",
        "body_swapped",
    ],
)
async def test_signature_matrix(
    fake_slack: FakeSlackWebAPI, tmp_path: Path, tamper: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with rig(fake_slack, tmp_path) as r:
        inbound = r.fake.payloads.slash_command(text="help SECRETBODY", user_id=USERS["alice"])
        now = int(time.time())
        kw: dict[str, object] = {
            "bad_signature": {"headers": {"X-Slack-Signature": "v0=" + "0" * 64}},
            "no_signature": {"headers": {"X-Slack-Signature": None}},
            "no_timestamp": {"headers": {"X-Slack-Request-Timestamp": None}},
            "old": {"timestamp": now - 301},
            "future": {"timestamp": now + 301},
            "huge_timestamp": {"headers": {"X-Slack-Request-Timestamp": "9" * 5000}},
            "junk_timestamp": {"headers": {"X-Slack-Request-Timestamp": "1e9"}},
            "unicode_signature": {"headers": {"X-Slack-Signature": "v0=ü" + "0" * 63}},
            "wrong_secret": {"signing_secret": "not-the-secret"},
            "body_swapped": {"body": inbound.body.replace(b"help", b"next")},
        }[tamper]  # type: ignore[assignment]
        resp = await r.send(inbound, **kw)  # type: ignore[arg-type]
        assert resp.status == 401
        assert r.fake.methods() == []  # never reached the core (or even auth.test)
        assert "SECRETBODY" not in caplog.text


async def test_signature_accepted_within_window(fake_slack: FakeSlackWebAPI, tmp_path: Path) -> None:
    async with rig(fake_slack, tmp_path) as r:
        inbound = r.fake.payloads.slash_command(text="help", user_id=USERS["alice"])
        assert (await r.send(inbound, timestamp=int(time.time()) - 290)).status == 200


async def test_malformed_payloads_refused_without_traceback(
    fake_slack: FakeSlackWebAPI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with rig(fake_slack, tmp_path) as r:
        for body in (b"payload=%7Bnot-json", b"payload=%5B%5D", b"\xff\xfe", b"{"):
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                **signed_headers(r.fake.signing_secret, body),
            }
            resp = await r.sim.post(body, headers)
            assert resp.status in (400, 404), (body, resp)
        # a signed button click without a user
        click = r.fake.payloads.block_actions("cv:abc:v:1:a", "x")
        payload = dict(click.payload)
        payload["user"] = {"id": "<!channel>"}
        resp = await r.send(r.fake.payloads.interactive(payload))
        assert resp.status == 200
        # a signed click on a button id that is not ours: the person is told privately
        await r.click("alice", "cv:zz:nonsense")
        assert r.ephemerals("alice")
        assert "Traceback" not in caplog.text


HOSTILE_TITLE = "[council form](https://council.example) <https://evil.example|official survey> \u202e!"
HOSTILE_NAME = "<!channel>\u202e*Convener:*"


def sent(r: Rig) -> list[tuple[str, Any]]:
    """(fallback text, blocks or view) of everything the bot showed: posts, edits, ephemerals, replies
    through a response_url, and modals."""
    out = [
        (c.get("text") or "", c.blocks)
        for c in r.fake.calls()
        if c.method in ("chat.postMessage", "chat.update", "chat.postEphemeral", "response_url")
    ]
    return out + [("", c.view["blocks"]) for c in r.fake.calls("views.open")]


async def test_hostile_text_posts_nothing_live_publicly_or_privately(
    fake_slack: FakeSlackWebAPI, tmp_path: Path
) -> None:
    """A round played with hostile titles, ideas, goal fields, a display name and a typed subcommand,
    through signed requests and bolt against the fake: nothing the bot showed (posts, edits,
    ephemerals, modals) carries mrkdwn, a live link, a mention or a hidden character, and it all
    reads as canonical text, the bot's bold labels untouched."""
    async with rig(fake_slack, tmp_path) as r:
        await r.form(
            "maya", "start", {"title": HOSTILE_TITLE, "purpose": "<@U0BOB> *why*", "template": "standard"}
        )
        for who in ("alice", "bob", "carol"):
            await r.form(who, "join", {"sector": "resident"})
        hostile = ["*Idea 99*", "**Idea 98**", "> Official City statement", *FRAGMENTS[:60:10]]
        for i, text in enumerate(hostile[:9]):
            await r.form(("alice", "bob", "carol")[i % 3], "contribute", {"text": text})
        typed = "\u202e*frob*<!here>"
        await r.command("bob", typed + " [x](https://evil.example)")
        await r.command("maya", "next")
        await r.open_deck("bob")  # the private deck card shows an idea's whole text
        await r.press("bob", "Agree")
        await r.command("maya", "next")
        await r.click("maya", r.channel_buttons(r":goal:\d+$")[0])
        goal = {"idea": "1", "title": "**Goal 9** <@U0BOB>", "outcome": "> Official", "metric": "~m~"}
        goal |= {"unit": "km", "baseline": "0", "target": "2", "deadline": "2027-09-01", "pilot": "no"}
        await r.submit("maya", r.last_view(), goal)
        await r.command("maya", "next")
        action = {"goal": "1", "title": "<https://evil.example|Sign here>", "owner": "", "due": "2027-01-31"}
        await r.form("maya", "action 1", action)
        take = r.fake.payloads.block_actions(
            *[r.channel_buttons(r":take:1$")[0]] * 2, user_id=USERS["carol"], user_name=HOSTILE_NAME
        )
        assert (await r.send(take)).status == 200
        await r.command("maya", "close")

        found = [p for text, blocks in sent(r) for p in slack_problems(text, blocks)]
        assert found == []
        assert all(c.ok for c in r.fake.calls() if c.method != "response_url")
        # Not vacuous: the hostile text is there, as canonical inert text.
        shown = "\n".join(slack_reading(blocks)[0] for _text, blocks in sent(r))
        assert "council form (https://council.example) official survey (https://evil.example)" in shown
        assert "Idea 99\n" in shown  # the idea typed as *Idea 99*, plain
        assert display_name(HOSTILE_NAME) in r.public_text()  # the volunteer, on the action card
        assert f"“{one_line(typed)}”" in shown  # an echo of what was typed, as canonical text
        # The bot's own labels are bold; nothing a person typed is.
        styled = [
            el
            for _t, blocks in sent(r)
            for obj in _rich_elements(blocks)
            for el in obj
            if el.get("style", {}).get("bold")
        ]
        assert any(el["text"].startswith("Idea ") for el in styled)
        assert not any("Idea 99" in el["text"] or "Idea 98" in el["text"] for el in styled)
        assert "\u202e" not in json.dumps([b for _t, b in sent(r)], ensure_ascii=False)


def _rich_elements(blocks: Any) -> list[list[dict[str, Any]]]:
    found = []
    for block in blocks or []:
        for obj in block.get("elements", []) if block.get("type") == "rich_text" else []:
            found.append(obj.get("elements", []))
    return found


async def test_long_idea_splits(fake_slack: FakeSlackWebAPI, tmp_path: Path) -> None:
    async with rig(fake_slack, tmp_path) as r:
        await started(r)
        long_idea = ("word " * 700).strip() + " & <end>"  # over 3,000 characters
        await r.form("alice", "contribute", {"text": long_idea[:1000]})
        await r.command("maya", "next")
        assert all(c.ok for c in r.fake.calls("chat.postMessage"))
    # Directly through the port: a 3,000-character idea and 120 buttons, never rejected.
    port = SlackChatPort(make_client(fake_slack.bot_token, fake_slack.base_url))
    blocks = tuple(
        Block(f"**Idea {n}**\n" + port.escape(long_idea), (Button(f"cv:r:v:{n}:a", "Agree", "primary"),))
        for n in range(1, 31)
    )
    msgs = render_messages(Rendered(blocks))
    first = await port.post(TO, Rendered(blocks))
    posts = fake_slack.calls("chat.postMessage")[-len(msgs) :]
    assert all(c.ok for c in posts)
    assert posts[0].response["ts"] == first
    assert len(msgs) >= 2
    assert all(len(b) <= 50 for _, b in msgs)
    rich = [s for _, b in msgs for s in b if s["type"] == "rich_text"]
    assert len(rich) > 30  # each idea split in two
    assert max(sum(len(el["text"]) for sec in s["elements"] for el in sec["elements"]) for s in rich) <= 3000
    await port.edit(TO, first, Rendered(blocks))
    assert fake_slack.calls("chat.update")[-1].ok
    await port.aclose()


async def test_private_reply_falls_back_to_response_url(fake_slack: FakeSlackWebAPI) -> None:
    port = SlackChatPort(make_client(fake_slack.bot_token, fake_slack.base_url))
    url = fake_slack.new_response_url()
    fake_slack.fail_next("chat.postEphemeral", error="channel_not_found")
    await port.post_private(TO, "U0ALICE", Rendered((Block("hello"),)), url)
    sent = fake_slack.calls("response_url")
    assert sent
    assert sent[0]["response_type"] == "ephemeral"
    dm = await port.send_direct("T0CONVENE", "U0ALICE", Rendered((Block("hi"),)))
    assert dm
    assert fake_slack.calls("conversations.open")
    await port.aclose()


async def test_socket_mode_slash_command(fake_slack: FakeSlackWebAPI, tmp_path: Path) -> None:
    async with rig(fake_slack, tmp_path) as r:
        config = replace(r.app.config.slack, mode="socket")
        bolt = create_bolt_app(
            r.app.core, config, client=make_client(fake_slack.bot_token, fake_slack.base_url)
        )
        async with fake_slack.socket_mode(bolt):
            inbound = fake_slack.payloads.slash_command(text="help", user_id=USERS["bob"], user_name="bob")
            ack = await fake_slack.socket_deliver(inbound)
            assert ack["envelope_id"]
            await bolt.convene_handlers.wait_idle()  # type: ignore[attr-defined]
            await r.app.relay.drain()
            assert r.ephemerals("bob")
            # redelivered event over the socket: handled once
            ev = fake_slack.payloads.message_event(
                "hi", user_id=USERS["bob"], channel_id="D0BOB", channel_type="im", event_id="EvS"
            )
            await fake_slack.socket_deliver(ev)
            await fake_slack.socket_send("events_api", ev.payload, retry_attempt=1, retry_reason="timeout")
            await bolt.convene_handlers.wait_idle()  # type: ignore[attr-defined]
            await r.app.relay.drain()
            assert len([c for c in fake_slack.calls("chat.postEphemeral") if c["channel"] == "D0BOB"]) == 1
