"""Faults stay small on Slack: signed payloads of a shape Slack never sends get a 400 (never a 500 or
a traceback), their sender is told where Slack gives a way (the response_url, an error inside the
form), and a form that cannot be read stays open with what was typed. Real signed HTTP into bolt."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlparse

import pytest
from sqlalchemy import text

from tests.adapters.slack.rig import USERS, Rig, rig, seen_text
from tests.platform_fakes.slack import FakeSlackWebAPI, SimResponse, signed_headers

Payload = dict[str, Any]


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info], [
        r.getMessage() for r in caplog.records if r.exc_info
    ]
    assert "Traceback" not in caplog.text


async def post_json(r: Rig, body: bytes) -> SimResponse:
    headers = {"Content-Type": "application/json", **signed_headers(r.fake.signing_secret, body)}
    resp = await r.sim.post(body, headers)
    await r.settle()
    return resp


async def post_interactive(r: Rig, payload: Any) -> SimResponse:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        **signed_headers(r.fake.signing_secret, body),
    }
    resp = await r.sim.post(body, headers)
    await r.settle()
    return resp


def told_at(r: Rig, url: str) -> list[str]:
    """What was posted to one response_url (each payload in these tests carries its own)."""
    path = urlparse(url).path
    return [c.get("text", "") for c in r.fake.calls("response_url") if c.path == path]


def error_text(r: Rig, code: str) -> str:
    from bot.prompts import PromptKey

    return r.app.core.prompts.render(PromptKey.ERROR, {"code": code}).strip()


def first_action(p: Payload) -> dict[str, Any]:
    action: dict[str, Any] = p["actions"][0]
    return action


WRONG_SHAPES: dict[str, Callable[[Payload], None]] = {
    "actions empty": lambda p: p.update(actions=[]),
    "actions a string": lambda p: p.update(actions="cv:x:v:1:a"),
    "actions missing": lambda p: p.pop("actions"),
    "actions [null]": lambda p: p.update(actions=[None]),
    "actions [{}]": lambda p: p.update(actions=[{}]),
    "action_id an int": lambda p: first_action(p).update(action_id=5),
    "block_id a list": lambda p: first_action(p).update(block_id=["x"]),
    "user a list": lambda p: p.update(user=["U0ALICE"]),
    "team a number": lambda p: p.update(team=7),
    "container a string": lambda p: p.update(container="C0GENERAL"),
    "type a number": lambda p: p.update(type=1),
    "trigger_id a dict": lambda p: p.update(trigger_id={}),
}


@pytest.mark.parametrize("case", list(WRONG_SHAPES))
async def test_clicks_of_the_wrong_shape_get_400_and_the_sender_is_told(
    fake_slack: FakeSlackWebAPI, tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    caplog.set_level(logging.INFO)
    async with rig(fake_slack, tmp_path) as r:
        click = r.fake.payloads.block_actions("cv:abc:v:1:a", "x", user_id=USERS["alice"], user_name="alice")
        payload = copy.deepcopy(click.payload)
        WRONG_SHAPES[case](payload)
        resp = await post_interactive(r, payload)
        assert resp.status == 400, resp
        assert {k.lower(): v for k, v in resp.headers.items()}["x-slack-no-retry"] == "1"
        assert told_at(r, payload["response_url"]) == [error_text(r, "malformed_request")]
        assert not r.fake.calls("auth.test")  # refused before bolt's authorization
        no_traceback(caplog)


@pytest.mark.parametrize(
    "case",
    [
        "view a string",
        "view null",
        "callback_id a number",
        "view type missing",
        "state a list",
        "event null",
        "event a list",
        "event type missing",
        "no type at all",
        "a JSON list",
        "a JSON string",
    ],
)
async def test_other_wrong_shapes_get_400_without_a_traceback(
    fake_slack: FakeSlackWebAPI, tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    async with rig(fake_slack, tmp_path) as r:
        sub = copy.deepcopy(r.fake.payloads.view_submission("cv:x:form:contribute", {}).payload)
        ev = copy.deepcopy(r.fake.payloads.message_event("hi", channel_type="im", channel_id="D0X").payload)
        body: Any = {
            "view a string": {**sub, "view": "V0"},
            "view null": {**sub, "view": None},
            "callback_id a number": {**sub, "view": {**sub["view"], "callback_id": 12}},
            "view type missing": {**sub, "view": {k: v for k, v in sub["view"].items() if k != "type"}},
            "state a list": {**sub, "view": {**sub["view"], "state": []}},
            "event null": {**ev, "event": None},
            "event a list": {**ev, "event": [ev["event"]]},
            "event type missing": {**ev, "event": {k: v for k, v in ev["event"].items() if k != "type"}},
            "no type at all": {"token": "x", "team_id": "T0CONVENE"},
            "a JSON list": [ev],
            "a JSON string": "event_callback",
        }[case]
        interactive = isinstance(body, dict) and body.get("type") == "view_submission"
        resp = await (post_interactive(r, body) if interactive else post_json(r, json.dumps(body).encode()))
        assert resp.status == 400, resp
        no_traceback(caplog)


@pytest.mark.parametrize("where", ["raw JSON", "payload field", "private_metadata"])
async def test_deeply_nested_json_is_refused(
    fake_slack: FakeSlackWebAPI, tmp_path: Path, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    async with rig(fake_slack, tmp_path) as r:
        if where == "raw JSON":
            resp = await post_json(r, deep.encode())
            assert resp.status == 400
        elif where == "payload field":
            body = b"payload=" + deep.encode()
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                **signed_headers(r.fake.signing_secret, body),
            }
            resp = await r.sim.post(body, headers)
            assert resp.status == 400
        else:  # a click inside a modal whose metadata nests too deep to parse: told, never a 500
            view = {"callback_id": "cv:x:form:goal", "private_metadata": deep[:6000] + deep[-6000:]}
            click = r.fake.payloads.block_actions("cv:abc:v:1:a", "x", view=view, user_id=USERS["alice"])
            resp = await post_interactive(r, click.payload)
            assert resp.status == 200
        no_traceback(caplog)


async def test_a_click_with_neither_channel_nor_container_is_answered(
    fake_slack: FakeSlackWebAPI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """on_action used to raise after ack() here (``_metadata_channel`` outside its try)."""
    caplog.set_level(logging.INFO)
    async with rig(fake_slack, tmp_path) as r:
        click = r.fake.payloads.block_actions("cv:abc:v:1:a", "x", user_id=USERS["alice"])
        payload = {k: v for k, v in click.payload.items() if k not in ("channel", "container")}
        resp = await post_interactive(r, payload)
        assert resp.status == 200  # acknowledged first, as every click is
        assert told_at(r, payload["response_url"]) == [error_text(r, "malformed_request")]
        # A click inside a modal whose metadata does not read: no response_url, no channel, so
        # nobody to tell; acknowledged, logged, nothing raised.
        in_modal = r.fake.payloads.block_actions(
            "cv:abc:v:1:a", "x", view={"private_metadata": "{not json"}, user_id=USERS["alice"]
        )
        assert "response_url" not in in_modal.payload
        assert (await r.send(in_modal)).status == 200
        assert "cannot be reached" in caplog.text
        no_traceback(caplog)


async def test_without_a_response_url_the_sender_is_told_in_the_channel(
    fake_slack: FakeSlackWebAPI, tmp_path: Path
) -> None:
    async with rig(fake_slack, tmp_path) as r:
        click = r.fake.payloads.block_actions("cv:abc:v:1:a", "x", user_id=USERS["bob"])
        payload = {**click.payload, "team": {"id": "T0 not an id"}}
        payload.pop("response_url")
        assert (await post_interactive(r, payload)).status == 200
        [told] = r.fake.calls("chat.postEphemeral")
        assert (told["channel"], told["user"]) == ("C0GENERAL", USERS["bob"])
        assert "could not be read" in seen_text(told.blocks)


async def test_ids_that_do_not_read_are_told_through_the_response_url(
    fake_slack: FakeSlackWebAPI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with rig(fake_slack, tmp_path) as r:
        # A slash command from an unreadable user id: nothing reaches the core, the sender is told.
        cmd = r.fake.payloads.slash_command(text="status", user_id="<!everyone>", user_name="x")
        assert (await r.send(cmd)).status == 200
        assert told_at(r, cmd.payload["response_url"]) == [error_text(r, "malformed_request")]
        # A click whose channel is not an id.
        click = r.fake.payloads.block_actions("cv:abc:v:1:a", "x", user_id=USERS["bob"], channel_id="C0\nX")
        assert (await r.send(click)).status == 200
        assert told_at(r, click.payload["response_url"]) == [error_text(r, "malformed_request")]
        assert not r.fake.calls("chat.postMessage")
        no_traceback(caplog)


@pytest.mark.parametrize("text", ["link AB\x00CD", "status \x00"])
async def test_text_no_database_can_store_is_refused_privately(
    fake_slack: FakeSlackWebAPI, tmp_path: Path, text: str
) -> None:
    """A NUL (PostgreSQL refuses it in text) in a command never reaches the database driver."""
    async with rig(fake_slack, tmp_path) as r:
        await r.command("maya", text)
        assert error_text(r, "malformed_request") in r.ephemerals_text("maya")
        # The same as a JSON body, where a lone surrogate can travel too.
        cmd = r.fake.payloads.slash_command(text="x", user_id=USERS["maya"], user_name="maya")
        body = json.dumps({**cmd.payload, "text": "link AB\ud800CD"}).encode()
        assert (await post_json(r, body)).status == 200
        assert r.ephemerals_text("maya").count("could not be read") == 2


async def test_a_form_whose_metadata_cannot_be_read_stays_open_with_an_error(
    fake_slack: FakeSlackWebAPI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with rig(fake_slack, tmp_path) as r:
        await r.form("maya", "start", {"title": "Round", "purpose": "Purpose", "template": "standard"})
        await r.form("alice", "join", {"sector": "resident"})
        await r.command("alice", "contribute")
        view = r.last_view()
        typed = {"text": {"text": "Plant reeds along the river"}}
        for metadata in ("{not json", json.dumps({"c": 5}), json.dumps({"c": "C0 X"}), "[" * 5000):
            sub = r.fake.payloads.view_submission(
                view["callback_id"],
                typed,
                private_metadata=metadata,
                user_id=USERS["alice"],
                user_name="alice",
                blocks=view["blocks"],
            )
            resp = await r.send(sub)
            assert resp.status == 200
            body = resp.json()  # not closed: the form stays on screen, with what was typed
            assert body["response_action"] == "errors"
            assert body["errors"] == {"text": r.handlers.error_text("form_unreadable")}
        # A submitter id that does not read, and a state of the wrong kind: the same.
        for mutate in (lambda p: p.update(user={"id": 5}), lambda p: p["view"]["state"].update(values=[])):
            sub = r.fake.payloads.view_submission(
                view["callback_id"],
                typed,
                private_metadata=view["private_metadata"],
                user_id=USERS["alice"],
                blocks=view["blocks"],
            )
            payload = copy.deepcopy(sub.payload)
            mutate(payload)
            resp = await post_interactive(r, payload)
            assert resp.json()["response_action"] == "errors"
        # A view that lost its callback_id still shows the error in the form rather than a 400.
        payload = copy.deepcopy(sub.payload)
        payload["view"]["callback_id"] = None
        resp = await post_interactive(r, payload)
        assert resp.status == 200
        assert resp.json()["errors"] == {"text": r.handlers.error_text("form_unreadable")}
        async with r.app.engine.connect() as conn:
            assert (await conn.execute(text("select count(*) from ideas"))).scalar() == 0
        no_traceback(caplog)


async def test_a_payload_no_listener_takes_is_answered_without_quoting_it(
    fake_slack: FakeSlackWebAPI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with rig(fake_slack, tmp_path) as r:
        click = r.fake.payloads.block_actions("SECRET-not-ours", "x", user_id=USERS["alice"])
        resp = await r.send(click)
        assert resp.status == 404
        assert told_at(r, click.payload["response_url"]) == [error_text(r, "malformed_request")]
        shortcut = {**click.payload, "type": "message_action", "callback_id": "SECRET-callback"}
        shortcut["trigger_id"] = r.fake.new_trigger_id()
        resp = await post_interactive(r, shortcut)
        assert resp.status == 404
        assert "SECRET" not in caplog.text
        no_traceback(caplog)


async def test_socket_mode_payloads_of_the_wrong_shape_are_refused_too(
    fake_slack: FakeSlackWebAPI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The shape check is bolt middleware, so it stands in front of Socket Mode as of HTTP."""
    from adapters.slack.app import create_bolt_app
    from adapters.slack.port import make_client

    async with rig(fake_slack, tmp_path) as r:
        config = replace(r.app.config.slack, mode="socket")
        bolt = create_bolt_app(
            r.app.core, config, client=make_client(fake_slack.bot_token, fake_slack.base_url)
        )
        async with fake_slack.socket_mode(bolt):
            click = fake_slack.payloads.block_actions("cv:abc:v:1:a", "x", user_id=USERS["alice"])
            payload = {**click.payload, "actions": [None]}
            ack = await fake_slack.socket_deliver(fake_slack.payloads.interactive(payload))
            assert ack["envelope_id"]
            await bolt.convene_handlers.wait_idle()  # type: ignore[attr-defined]
            assert told_at(r, payload["response_url"]) == [error_text(r, "malformed_request")]
        no_traceback(caplog)


async def test_a_form_slack_will_not_open_is_said_so(fake_slack: FakeSlackWebAPI, tmp_path: Path) -> None:
    """A trigger that expired or does not read: the click used to do nothing at all."""
    async with rig(fake_slack, tmp_path) as r:
        await r.form("maya", "start", {"title": "Round", "purpose": "Purpose", "template": "standard"})
        for trigger in ("1.2.abc", None):
            cmd = r.fake.payloads.slash_command(text="join", user_id=USERS["bob"], user_name="bob")
            body = (
                {**cmd.payload, "trigger_id": trigger}
                if trigger
                else {k: v for k, v in cmd.payload.items() if k != "trigger_id"}
            )
            assert (await post_json(r, json.dumps(body).encode())).status == 200
        told = r.ephemerals_text("bob")
        assert told.count("could not be opened in time") == 2


async def test_a_form_no_listener_takes_keeps_its_text_on_screen(
    fake_slack: FakeSlackWebAPI, tmp_path: Path
) -> None:
    async with rig(fake_slack, tmp_path) as r:
        sub = r.fake.payloads.view_submission(
            "not-one-of-ours", {"text": {"text": "typed"}}, user_id=USERS["alice"], user_name="alice"
        )
        resp = await r.send(sub)
        assert resp.status == 200
        assert resp.json()["errors"] == {"text": r.handlers.error_text("form_unreadable")}


async def test_a_response_url_that_is_not_one_is_never_stored(
    fake_slack: FakeSlackWebAPI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """It travels with the private reply in the outbox; a lone surrogate in it reached the driver."""
    async with rig(fake_slack, tmp_path) as r:
        cmd = r.fake.payloads.slash_command(text="status", user_id=USERS["alice"], user_name="alice")
        for url in ("http://hooks.example/\ud800", "javascript:alert(1)"):
            body = json.dumps({**cmd.payload, "response_url": url, "trigger_id": r.fake.new_trigger_id()})
            assert (await post_json(r, body.encode())).status == 200
        assert len(r.ephemerals("alice")) == 2  # answered in the channel instead
        no_traceback(caplog)
        assert "slack request failed" not in caplog.text


async def test_an_event_field_of_the_wrong_kind_on_any_payload_is_refused(
    fake_slack: FakeSlackWebAPI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """bolt's IgnoringSelfEvents reads ``event`` on every payload, not only on events."""
    async with rig(fake_slack, tmp_path) as r:
        cmd = r.fake.payloads.slash_command(text="status", user_id=USERS["alice"], user_name="alice")
        resp = await post_json(r, json.dumps({**cmd.payload, "event": "x"}).encode())
        assert resp.status == 400
        assert told_at(r, cmd.payload["response_url"]) == [error_text(r, "malformed_request")]
        no_traceback(caplog)


async def test_input_blocks_whose_ids_are_not_text_are_not_used_for_errors(
    fake_slack: FakeSlackWebAPI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with rig(fake_slack, tmp_path) as r:
        await r.form("maya", "start", {"title": "Round", "purpose": "Purpose", "template": "standard"})
        await r.form("alice", "join", {"sector": "resident"})
        await r.command("alice", "contribute")
        view = r.last_view()
        blocks = [{**view["blocks"][-1], "block_id": ["text"]}, *view["blocks"]]
        sub = r.fake.payloads.view_submission(
            view["callback_id"],
            {"text": {"text": ""}},
            private_metadata=view["private_metadata"],
            user_id=USERS["alice"],
            blocks=blocks,
        )
        resp = await r.send(sub)
        assert resp.status == 200
        assert list(resp.json()["errors"]) == ["text"]  # the empty idea, on the block Slack knows
        no_traceback(caplog)
        assert "failed" not in caplog.text
