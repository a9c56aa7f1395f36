"""Proves the fake Slack harness against a bare slack-bolt AsyncApp (no convene code).

HTTP mode: real signed requests -> bolt's aiohttp app on 127.0.0.1:<ephemeral> -> Web API calls
recorded by the fake. Socket Mode: bolt's AsyncSocketModeHandler connected to the fake's websocket.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltRequest, AsyncRespond, AsyncSay
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from tests.platform_fakes.slack import (
    FakeSlackWebAPI,
    SlackClientSim,
    SocketAckTimeout,
    serve_aiohttp_app,
)

MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "feedback",
    "title": {"type": "plain_text", "text": "Feedback"},
    "submit": {"type": "plain_text", "text": "Send"},
    "blocks": [
        {
            "type": "input",
            "block_id": "fb",
            "label": {"type": "plain_text", "text": "Your view"},
            "element": {"type": "plain_text_input", "action_id": "text"},
        }
    ],
}


def bare_app(fake: FakeSlackWebAPI) -> AsyncApp:
    """A minimal bolt app with one command, one button and one modal."""
    client: AsyncWebClient = fake.web_client()
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=1))
    app = AsyncApp(client=client, signing_secret=fake.signing_secret)

    @app.command("/convene")
    async def convene(ack: AsyncAck, say: AsyncSay, respond: AsyncRespond, command: dict[str, Any]) -> None:
        await ack()
        await say(
            text=f"convening: {command['text']}",
            blocks=[
                {"type": "section", "text": {"type": "mrkdwn", "text": "Join?"}},
                {
                    "type": "actions",
                    "block_id": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "action_id": "open_modal",
                            "value": "r1",
                            "text": {"type": "plain_text", "text": "Join"},
                        }
                    ],
                },
            ],
        )
        await respond(text="only you can see this", response_type="ephemeral")

    @app.action("open_modal")
    async def open_modal(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=MODAL)

    @app.view("feedback")
    async def feedback(ack: AsyncAck, view: dict[str, Any]) -> None:
        text = view["state"]["values"]["fb"]["text"]["value"]
        if not text:
            await ack(response_action="errors", errors={"fb": "Please write something"})
            return
        await ack()

    return app


@pytest.fixture
async def bolt_http(fake_slack: FakeSlackWebAPI) -> AsyncIterator[SlackClientSim]:
    app = bare_app(fake_slack)
    async with (
        serve_aiohttp_app(app.web_app()) as url,
        SlackClientSim(f"{url}/slack/events", fake_slack.signing_secret) as sim,
    ):
        yield sim


# --- HTTP mode through bolt -----------------------------------------------------------------------


async def test_signed_slash_command_acks_and_posts(
    fake_slack: FakeSlackWebAPI, bolt_http: SlackClientSim
) -> None:
    status, _, body = await bolt_http.send(fake_slack.payloads.slash_command(text="housing"))
    assert (status, body) == (200, b"")
    [post] = await fake_slack.wait_for("chat.postMessage")
    [reply] = await fake_slack.wait_for("response_url")
    assert post.ok
    assert post["channel"] == "C0GENERAL"
    assert post["text"] == "convening: housing"
    assert post.blocks[1]["elements"][0]["action_id"] == "open_modal"
    assert post.headers["Authorization"] == f"Bearer {fake_slack.bot_token}"
    assert post.content_type == "application/json"  # slack_sdk sends chat.* as JSON
    assert reply["response_type"] == "ephemeral"
    assert reply.status == 200
    # AsyncApp authorizes lazily with auth.test on the first request, against the fake.
    assert fake_slack.calls("auth.test")[0].ok
    assert fake_slack.messages("C0GENERAL")[0]["ts"] == post.response["ts"]


@pytest.mark.parametrize(
    ("tamper", "kwargs", "skew"),
    [
        ("wrong secret", {"signing_secret": "not-the-secret"}, None),
        ("stale by 301 s", {}, -301),
        ("future by 301 s", {}, 301),
        ("no signature", {"headers": {"X-Slack-Signature": None, "X-Slack-Request-Timestamp": None}}, None),
        ("body changed", {"body": b"command=%2Fconvene&text=evil"}, None),
    ],
)
async def test_unverifiable_requests_get_401(
    fake_slack: FakeSlackWebAPI,
    bolt_http: SlackClientSim,
    tamper: str,
    kwargs: dict[str, Any],
    skew: int | None,
) -> None:
    if skew is not None:  # computed at send time: a collection-time timestamp would drift
        kwargs = {"timestamp": int(time.time()) + skew}
    resp = await bolt_http.send(fake_slack.payloads.slash_command(), **kwargs)
    assert resp.status == 401, tamper
    assert resp.json() == {"error": "invalid request"}
    assert fake_slack.calls() == []  # nothing reached the Web API, not even auth.test


async def test_block_action_opens_modal_with_harness_trigger(
    fake_slack: FakeSlackWebAPI, bolt_http: SlackClientSim
) -> None:
    click = fake_slack.payloads.block_actions("open_modal", "r1", message_ts="1700000000.000100")
    assert (await bolt_http.send(click)).status == 200
    [opened] = await fake_slack.wait_for("views.open")
    assert opened.ok, opened.response
    assert opened["trigger_id"] == click.trigger_id
    assert opened.response["view"]["callback_id"] == "feedback"
    # Slack exchanges a trigger_id once.
    with pytest.raises(SlackApiError) as exc:
        await fake_slack.web_client().views_open(trigger_id=click.trigger_id, view=MODAL)
    assert exc.value.response["error"] == "exchanged_trigger_id"


async def test_view_submission_validation_errors_and_success(
    fake_slack: FakeSlackWebAPI, bolt_http: SlackClientSim
) -> None:
    empty = fake_slack.payloads.view_submission("feedback", {"fb": {"text": ""}}, private_metadata="round-1")
    resp = await bolt_http.send(empty)
    assert resp.status == 200
    assert resp.json() == {"response_action": "errors", "errors": {"fb": "Please write something"}}
    assert empty.payload["view"]["private_metadata"] == "round-1"
    ok = await bolt_http.send(fake_slack.payloads.view_submission("feedback", {"fb": {"text": "more parks"}}))
    assert (ok.status, ok.body) == (200, b"")


async def test_429_is_retried_after_retry_after(
    fake_slack: FakeSlackWebAPI, bolt_http: SlackClientSim
) -> None:
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=1)
    assert (await bolt_http.send(fake_slack.payloads.slash_command())).status == 200
    first, second = await fake_slack.wait_for("chat.postMessage", 2, timeout=5)
    assert (first.status, first.error, first.injected) == (429, "ratelimited", True)
    assert second.ok
    assert second.at - first.at >= 1.0  # slack_sdk slept Retry-After (+ jitter) before retrying


async def test_events_api_retry_headers_reach_bolt(fake_slack: FakeSlackWebAPI) -> None:
    app = bare_app(fake_slack)
    seen: list[tuple[str, str | None]] = []

    @app.event("app_mention")
    async def mention(body: dict[str, Any], request: AsyncBoltRequest) -> None:
        seen.append((body["event_id"], request.headers.get("x-slack-retry-num", [None])[0]))

    event = {"type": "app_mention", "user": "U0ALICE", "text": "<@U0BOT> hi", "channel": "C0GENERAL"}
    async with (
        serve_aiohttp_app(app.web_app()) as url,
        SlackClientSim(f"{url}/slack/events", fake_slack.signing_secret) as sim,
    ):
        first = fake_slack.payloads.event_callback(event, "Ev1")
        retry = fake_slack.payloads.event_callback(event, "Ev1", retry_num=1, retry_reason="http_timeout")
        assert (await sim.send(first)).status == 200
        assert (await sim.send(retry)).status == 200
        challenge = await sim.send(fake_slack.payloads.url_verification("abc"))
        assert challenge.json() == {"challenge": "abc"}
    # Bolt does not deduplicate redeliveries: the app must (key on event_id).
    assert seen == [("Ev1", None), ("Ev1", "1")]


async def test_fast_path_dispatch_without_sockets(fake_slack: FakeSlackWebAPI) -> None:
    app = bare_app(fake_slack)
    req = fake_slack.payloads.view_submission("feedback", {"fb": {"text": None}})
    resp = await app.async_dispatch(req.bolt_request(fake_slack.signing_secret))
    assert resp.status == 200
    assert "Please write something" in resp.body


# --- Socket Mode through bolt ---------------------------------------------------------------------


async def test_socket_mode_envelopes_acks_and_reconnect(fake_slack: FakeSlackWebAPI) -> None:
    app = bare_app(fake_slack)
    handler = AsyncSocketModeHandler(app, app_token=fake_slack.app_token)
    await handler.connect_async()  # type: ignore[no-untyped-call]
    try:
        hello_conn = await fake_slack.wait_socket_connections(1)
        [opened] = fake_slack.calls("apps.connections.open")
        assert opened.token == fake_slack.app_token

        command = fake_slack.payloads.slash_command(text="via socket")
        ack = await fake_slack.socket_deliver(command)
        assert set(ack) == {"envelope_id"}  # a bare ack() carries no payload
        [post] = await fake_slack.wait_for("chat.postMessage")
        assert post["text"] == "convening: via socket"

        new_conn = await fake_slack.socket_disconnect("refresh_requested")
        assert new_conn is not None
        assert new_conn is not hello_conn
        assert hello_conn.closed
        assert len(fake_slack.calls("apps.connections.open")) == 2

        # The view_submission error comes back inside the ack on the new connection.
        ack = await fake_slack.socket_deliver(
            fake_slack.payloads.view_submission("feedback", {"fb": {"text": ""}})
        )
        assert ack["payload"] == {"response_action": "errors", "errors": {"fb": "Please write something"}}
        assert ack in new_conn.received

        click = fake_slack.payloads.block_actions("open_modal", "r1")
        await fake_slack.socket_deliver(click)
        [view] = await fake_slack.wait_for("views.open")
        assert view.ok
        assert view["trigger_id"] == click.trigger_id
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]


async def test_socket_mode_reconnects_after_abrupt_close(fake_slack: FakeSlackWebAPI) -> None:
    async with fake_slack.socket_mode(bare_app(fake_slack)):
        await fake_slack.socket_close()
        await fake_slack.wait_socket_connections(2)
        ack = await fake_slack.socket_deliver(fake_slack.payloads.slash_command())
        assert "envelope_id" in ack


async def test_socket_mode_event_retry_fields(fake_slack: FakeSlackWebAPI) -> None:
    app = bare_app(fake_slack)
    seen: list[tuple[str, str | None, str | None]] = []
    both = asyncio.Event()

    @app.event("message")
    async def message(body: dict[str, Any], request: AsyncBoltRequest) -> None:
        h = request.headers
        seen.append(
            (
                body["event_id"],
                h.get("x-slack-retry-num", [None])[0],
                h.get("x-slack-retry-reason", [None])[0],
            )
        )
        if len(seen) == 2:
            both.set()

    async with fake_slack.socket_mode(app):
        await fake_slack.socket_deliver(fake_slack.payloads.message_event("hi", event_id="EvS1"))
        await fake_slack.socket_deliver(
            fake_slack.payloads.message_event("hi", event_id="EvS1", retry_num=1, retry_reason="timeout")
        )
        await asyncio.wait_for(both.wait(), 3)  # event listeners run after the ack
    # Socket Mode mirrors retry_attempt into the header even on the first delivery ("0").
    assert seen == [("EvS1", "0", ""), ("EvS1", "1", "timeout")]


async def test_socket_send_raises_when_not_acked(fake_slack: FakeSlackWebAPI) -> None:
    async with fake_slack.socket_mode(AsyncApp(client=fake_slack.web_client())) as handler:
        # Detach bolt so nothing acks: the fake must report the missed deadline.
        handler.client.socket_mode_request_listeners.clear()
        with pytest.raises(SocketAckTimeout):
            await fake_slack.socket_send("events_api", {"type": "event_callback"}, timeout=0.3)


async def test_socket_url_requires_ticket_from_connections_open(fake_slack: FakeSlackWebAPI) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await session.ws_connect(f"{fake_slack.url.replace('http', 'ws')}/link/?ticket=guessed")
    client = fake_slack.web_client()
    with pytest.raises(SlackApiError) as exc:
        await client.apps_connections_open(app_token=fake_slack.bot_token)
    assert exc.value.response["error"] == "not_allowed_token_type"


# --- Web API rules enforced by the fake -----------------------------------------------------------


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def button(**overrides: Any) -> dict[str, Any]:
    el = {"type": "button", "action_id": "b", "value": "v", "text": {"type": "plain_text", "text": "Go"}}
    return {"type": "actions", "elements": [{**el, **overrides}]}


@pytest.mark.parametrize(
    ("case", "blocks"),
    [
        ("51 blocks", [section("x")] * 51),
        ("section text 3001", [section("x" * 3001)]),
        ("plain_text 3001", [{"type": "section", "text": {"type": "plain_text", "text": "x" * 3001}}]),
        ("button value 2001", [button(value="v" * 2001)]),
        ("action_id 256", [button(action_id="a" * 256)]),
        ("button text 76", [button(text={"type": "plain_text", "text": "t" * 76})]),
        ("duplicate block_id", [{**section("a"), "block_id": "x"}, {**section("b"), "block_id": "x"}]),
    ],
)
async def test_over_limit_blocks_are_rejected(
    fake_slack: FakeSlackWebAPI, case: str, blocks: list[dict[str, Any]]
) -> None:
    with pytest.raises(SlackApiError) as exc:
        await fake_slack.web_client().chat_postMessage(channel="C0GENERAL", text="t", blocks=blocks)
    assert exc.value.response["error"] == "invalid_blocks", case
    assert exc.value.response["response_metadata"]["messages"]


async def test_limits_are_inclusive(fake_slack: FakeSlackWebAPI) -> None:
    blocks = [section("x" * 3000), button(value="v" * 2000, action_id="a" * 255)] + [section("y")] * 48
    resp = await fake_slack.web_client().chat_postMessage(channel="C0GENERAL", text="t", blocks=blocks)
    assert resp["ok"]


@pytest.mark.parametrize(
    ("case", "change", "error"),
    [
        ("title 25", {"title": {"type": "plain_text", "text": "t" * 25}}, "invalid_arguments"),
        ("101 blocks", {"blocks": [section("x")] * 101}, "invalid_arguments"),
        ("input without submit", {"submit": None}, "invalid_arguments"),
        ("not a modal", {"type": "home"}, "invalid_arguments"),
    ],
)
async def test_invalid_modals_are_rejected(
    fake_slack: FakeSlackWebAPI, case: str, change: dict[str, Any], error: str
) -> None:
    trigger = fake_slack.new_trigger_id()
    with pytest.raises(SlackApiError) as exc:
        await fake_slack.web_client().views_open(trigger_id=trigger, view={**MODAL, **change})
    assert exc.value.response["error"] == error, case
    # A rejected view does not use up the trigger.
    assert (await fake_slack.web_client().views_open(trigger_id=trigger, view=MODAL))["ok"]


async def test_trigger_ids_expire_and_must_come_from_slack(fake_slack: FakeSlackWebAPI) -> None:
    client = fake_slack.web_client()
    trigger = fake_slack.payloads.slash_command().trigger_id
    fake_slack.advance_clock(3.1)
    for trigger_id, error in [(trigger, "expired_trigger_id"), ("12345.67890.made-up", "invalid_trigger_id")]:
        with pytest.raises(SlackApiError) as exc:
            await client.views_open(trigger_id=trigger_id, view=MODAL)
        assert exc.value.response["error"] == error


async def test_views_update_and_push(fake_slack: FakeSlackWebAPI) -> None:
    client = fake_slack.web_client()
    opened = (await client.views_open(trigger_id=fake_slack.new_trigger_id(), view=MODAL))["view"]
    updated = await client.views_update(view_id=opened["id"], hash=opened["hash"], view=MODAL)
    assert updated["view"]["id"] == opened["id"]
    with pytest.raises(SlackApiError) as exc:
        await client.views_update(view_id=opened["id"], hash="stale", view=MODAL)
    assert exc.value.response["error"] == "hash_conflict"
    with pytest.raises(SlackApiError) as exc:
        await client.views_update(view_id="VNOPE", view=MODAL)
    assert exc.value.response["error"] == "not_found"
    pushed = await client.views_push(trigger_id=fake_slack.new_trigger_id(), view=MODAL)
    assert pushed["ok"]


async def test_messages_update_delete_and_dm(fake_slack: FakeSlackWebAPI) -> None:
    client = fake_slack.web_client()
    posted = await client.chat_postMessage(channel="C0GENERAL", text="v1")
    await client.chat_update(channel="C0GENERAL", ts=posted["ts"], text="v2")
    assert fake_slack.messages("C0GENERAL")[0]["text"] == "v2"
    await client.chat_delete(channel="C0GENERAL", ts=posted["ts"])
    assert fake_slack.messages("C0GENERAL") == []
    with pytest.raises(SlackApiError) as exc:
        await client.chat_update(channel="C0GENERAL", ts=posted["ts"], text="v3")
    assert exc.value.response["error"] == "message_not_found"
    dm = (await client.conversations_open(users="U0ALICE"))["channel"]["id"]
    assert dm.startswith("D")
    eph = await client.chat_postEphemeral(channel="C0GENERAL", user="U0ALICE", text="psst")
    assert eph["message_ts"]
    # A message the user clicked on (built by payloads.block_actions) can be updated.
    click = fake_slack.payloads.block_actions("x", channel_id="C0OTHER", message_ts="1700000000.000200")
    assert click.payload["container"]["message_ts"] == "1700000000.000200"
    assert (await client.chat_update(channel="C0OTHER", ts="1700000000.000200", text="done"))["ok"]


async def test_tokens_are_checked(fake_slack: FakeSlackWebAPI) -> None:
    for token, error in [
        ("xoxb-wrong", "invalid_auth"),
        (fake_slack.app_token, "not_allowed_token_type"),
    ]:
        with pytest.raises(SlackApiError) as exc:
            await fake_slack.web_client(token=token).auth_test()
        assert exc.value.response["error"] == error
    with pytest.raises(SlackApiError) as exc:
        await AsyncWebClient(base_url=fake_slack.base_url).auth_test()
    assert exc.value.response["error"] == "not_authed"
    fake_slack.revoked_tokens.add(fake_slack.bot_token)
    with pytest.raises(SlackApiError) as exc:
        await fake_slack.web_client().auth_test()
    assert exc.value.response["error"] == "token_revoked"


async def test_fault_injection_and_unknown_methods(fake_slack: FakeSlackWebAPI) -> None:
    client = fake_slack.web_client()
    fake_slack.fail_next("chat.postMessage", error="invalid_auth")
    fake_slack.fail_next("chat.postMessage", status=503, times=2)
    with pytest.raises(SlackApiError) as exc:
        await client.chat_postMessage(channel="C0GENERAL", text="a")
    assert (exc.value.response.status_code, exc.value.response["error"]) == (200, "invalid_auth")
    for _ in range(2):
        with pytest.raises(SlackApiError) as exc:
            await client.chat_postMessage(channel="C0GENERAL", text="a")
        assert (exc.value.response.status_code, exc.value.response["error"]) == (503, "internal_error")
    assert (await client.chat_postMessage(channel="C0GENERAL", text="a"))["ok"]
    with pytest.raises(SlackApiError) as exc:
        await client.api_call("chat.scheduleMessage", json={"channel": "C0GENERAL", "text": "x"})
    assert exc.value.response["error"] == "unknown_method"
    fake_slack.stub("users.info", {"ok": True, "user": {"id": "U0ALICE", "tz": "Europe/London"}})
    assert (await client.users_info(user="U0ALICE"))["user"]["tz"] == "Europe/London"
    assert [c.injected for c in fake_slack.calls("chat.postMessage")] == [True, True, True, False]
    assert fake_slack.calls("users.info")[0]["user"] == "U0ALICE"  # GET query params are recorded too
    fake_slack.reset()
    assert fake_slack.calls() == []


async def test_form_encoded_calls_are_parsed(fake_slack: FakeSlackWebAPI) -> None:
    client = fake_slack.web_client()
    blocks = '[{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]'
    await client.api_call("chat.postMessage", data={"channel": "C0GENERAL", "text": "t", "blocks": blocks})
    [call] = fake_slack.calls("chat.postMessage")
    assert call.content_type == "application/x-www-form-urlencoded"
    assert call.blocks[0]["text"]["text"] == "hi"
    bad = '[{"type": "section", "text": {"type": "mrkdwn", "text": "' + "x" * 3001 + '"}}]'
    with pytest.raises(SlackApiError):
        await client.api_call("chat.postMessage", data={"channel": "C0GENERAL", "text": "t", "blocks": bad})


async def test_response_url_rules(fake_slack: FakeSlackWebAPI) -> None:
    import aiohttp

    url = fake_slack.payloads.slash_command().response_url
    assert url is not None
    assert url.startswith(fake_slack.url)
    async with aiohttp.ClientSession() as session:
        statuses = []
        for _ in range(6):
            async with session.post(url, json={"text": "hi"}) as resp:
                statuses.append(resp.status)
        assert statuses == [200] * 5 + [404]  # at most 5 uses
        async with session.post(f"{fake_slack.url}/response/unknown", json={"text": "x"}) as resp:
            assert resp.status == 404
    assert len(fake_slack.calls("response_url")) == 7


async def test_files_upload_v2_against_the_fake(fake_slack: FakeSlackWebAPI) -> None:
    """slack_sdk's own three-step upload works against the fake, as it does against Slack."""
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
    client = fake_slack.web_client()
    resp = await client.files_upload_v2(
        channel="C0GENERAL", file=png, filename="chart.png", title="Chart", initial_comment="the chart"
    )
    assert resp["file"]["name"] == "chart.png"
    assert resp["file"]["shares"] == {}  # sharing completes asynchronously on Slack
    assert fake_slack.methods() == [
        "files.getUploadURLExternal",
        "file_upload",
        "files.completeUploadExternal",
    ]
    [shared] = fake_slack.files("C0GENERAL")
    assert (shared.data, shared.title, shared.channels) == (png, "Chart", ["C0GENERAL"])
    [message] = fake_slack.messages("C0GENERAL")
    assert (message["subtype"], message["text"], message["files"][0]["mimetype"]) == (
        "file_share",
        "the chart",
        "image/png",
    )


async def test_file_upload_rules(fake_slack: FakeSlackWebAPI) -> None:
    import aiohttp

    client = fake_slack.web_client()

    async def error_of(method: str, **params: Any) -> str:
        with pytest.raises(SlackApiError) as exc:
            await client.api_call(method, params=params)
        return str(exc.value.response["error"])

    assert await error_of("files.getUploadURLExternal", filename="a.png") == "invalid_arguments"
    assert await error_of("files.getUploadURLExternal", filename="a.png", length=0) == "missing_argument"
    too_long = "x" * 1001
    assert (
        await error_of("files.getUploadURLExternal", filename="a.png", length=3, alt_txt=too_long)
        == "alt_txt_too_large"
    )
    issued = await client.files_getUploadURLExternal(filename="a.png", length=3)
    url, file_id = issued["upload_url"], issued["file_id"]
    assert url.startswith(f"{fake_slack.url}/upload/v1/")
    done = json.dumps([{"id": file_id}])
    # Not uploaded yet, unknown ids, unknown channels.
    assert (
        await error_of("files.completeUploadExternal", files=done, channel_id="C0GENERAL") == "file_not_found"
    )
    assert await error_of("files.completeUploadExternal", files='[{"id": "F0NOPE"}]') == "file_not_found"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=b"toolong") as resp:
            assert resp.status == 400  # not the declared length
        async with session.post(f"{fake_slack.url}/upload/v1/unknown", data=b"abc") as resp:
            assert resp.status == 404
        form = aiohttp.FormData()
        form.add_field("filename", b"abc", filename="a.png")
        async with session.post(url, data=form) as resp:  # multipart, as the docs' curl example
            assert (resp.status, await resp.text()) == (200, "OK - 3")
    fake_slack.known_channels = {"C0GENERAL"}
    assert (
        await error_of("files.completeUploadExternal", files=done, channel_id="C0NOPE") == "channel_not_found"
    )
    fake_slack.member_channels = set()
    assert (
        await error_of("files.completeUploadExternal", files=done, channel_id="C0GENERAL") == "not_in_channel"
    )
    fake_slack.member_channels = None
    assert await error_of(
        "files.completeUploadExternal", files=done, channel_id="C0GENERAL", thread_ts="1.2"
    ) == ("invalid_arguments")
    assert (await client.files_completeUploadExternal(files=[{"id": file_id}], channel_id="C0GENERAL"))["ok"]
    assert fake_slack.files("C0GENERAL")[0].data == b"abc"
    # Completed once: the id and its upload URL are spent.
    assert (
        await error_of("files.completeUploadExternal", files=done, channel_id="C0GENERAL") == "file_not_found"
    )
    async with aiohttp.ClientSession() as session, session.post(url, data=b"abc") as resp:
        assert resp.status == 404
    # Tokens are checked like any Web API method; the upload URL itself needs none.
    with pytest.raises(SlackApiError) as exc:
        await fake_slack.web_client(token="xoxb-wrong").files_getUploadURLExternal(filename="a", length=1)
    assert exc.value.response["error"] == "invalid_auth"
    fake_slack.fail_next("file_upload", retry_after=7)
    issued = await client.files_getUploadURLExternal(filename="b.png", length=1)
    async with aiohttp.ClientSession() as session, session.post(issued["upload_url"], data=b"b") as resp:
        assert (resp.status, resp.headers["Retry-After"]) == (429, "7")
    assert [c.status for c in fake_slack.calls("file_upload")][-1] == 429
