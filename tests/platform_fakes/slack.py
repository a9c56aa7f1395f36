"""A local fake of Slack (Web API + Socket Mode + response_url) for testing slack-bolt apps offline.

One aiohttp server on 127.0.0.1 with an ephemeral port, in the test's event loop:

* ``/api/<method>``: the Web API. Point ``AsyncWebClient(base_url=fake.base_url)`` at it. Every call
  is recorded (`RecordedCall`) with parsed params, headers and the response sent.
* ``/response/<id>``: response_urls handed out in payloads built via ``fake.payloads``. As on Slack,
  each knows where it came from: ``replace_original`` replaces the message clicked (an ephemeral
  one for its user only; a public one for everyone), ``delete_original`` deletes it, and otherwise
  a new ephemeral message (or, with ``response_type: in_channel``, a public one) appears.
  Ephemeral messages (from here and ``chat.postEphemeral``) are kept per user: `ephemerals`.
* ``/link/?ticket=...``: Socket Mode websocket, the URL that ``apps.connections.open`` returns.
* ``/upload/v1/<key>``: the file upload URLs that ``files.getUploadURLExternal`` hands out (Slack's
  ``files.slack.com/upload/v1/...``); ``files.completeUploadExternal`` shares what was uploaded.

The fake enforces some of Slack's real rules (tokens, Block Kit limits, modal limits, trigger_id
lifetime/single use) so that bugs which Slack would reject fail here too. See the module docstrings
of `slack_blocks` (limits) and `slack_payloads` (inbound builders).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import email
import email.policy
import itertools
import json
import secrets
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from tests.platform_fakes.slack_blocks import (
    MAX_MESSAGE_BLOCKS,
    MAX_MESSAGE_TEXT,
    decode_json_field,
    validate_blocks,
    validate_view,
)
from tests.platform_fakes.slack_payloads import (
    EnvelopeType,
    SlackInbound,
    SlackPayloads,
    SlackWorkspace,
    signed_headers,
)
from tests.platform_fakes.slack_sim import SimResponse, SlackClientSim, serve_aiohttp_app

__all__ = [
    "DEFAULT_APP_TOKEN",
    "DEFAULT_BOT_TOKEN",
    "DEFAULT_SIGNING_SECRET",
    "FakeSlackWebAPI",
    "RecordedCall",
    "SimResponse",
    "SlackClientSim",
    "SlackInbound",
    "SlackPayloads",
    "SlackWorkspace",
    "SocketAckTimeout",
    "SocketConnection",
    "serve_aiohttp_app",
    "signed_headers",
]

DEFAULT_BOT_TOKEN = "xoxb-fake-bot-token"
DEFAULT_APP_TOKEN = "xapp-1-fake-app-token"
DEFAULT_SIGNING_SECRET = "fake-signing-secret"

TRIGGER_TTL = 3.0  # seconds; Slack: "trigger_id expires in 3 seconds", single use
RESPONSE_URL_TTL = 30 * 60.0
RESPONSE_URL_MAX_USES = 5  # Slack docs: up to 5 times within 30 minutes
ACK_DEADLINE = 3.0  # Slack's ack deadline for Socket Mode envelopes
MAX_ALT_TEXT = 1000  # files.getUploadURLExternal: alt_txt_too_large beyond this
MAX_UPLOAD_BYTES = 1024 * 1024 * 1024  # Slack's 1 GB file limit (slack_sdk's MAX_V2_FILE_SIZE)
UPLOAD_URL_TTL = 10 * 60.0  # not documented; the fake expires unused upload URLs after this

Json = dict[str, Any]


class SocketAckTimeout(TimeoutError):
    """The app did not ack a Socket Mode envelope within the deadline."""


@dataclass
class RecordedCall:
    """One request the fake received (Web API method, or ``"response_url"``)."""

    method: str
    http_method: str
    path: str
    params: Json  # query + form or JSON body, merged; `token` param removed (see `token`)
    headers: dict[str, str]
    token: str | None
    raw_body: bytes
    content_type: str
    at: float
    status: int = 200
    response: Json = field(default_factory=dict)
    injected: bool = False  # answered by `fail_next`

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        err = self.response.get("error")
        return err if isinstance(err, str) else None

    @property
    def blocks(self) -> Any:
        """`blocks`, JSON-decoded if the client sent it form-encoded."""
        return decode_json_field(self.params.get("blocks"))

    @property
    def view(self) -> Any:
        return decode_json_field(self.params.get("view"))

    def __getitem__(self, key: str) -> Any:
        return self.params[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.params.get(key, default)


@dataclass(frozen=True)
class _Origin:
    """Where an interaction (and so its response_url) came from."""

    channel: str | None = None
    user: str | None = None
    message_ts: str | None = None  # the message clicked (None for a slash command)
    ephemeral: bool = False


@dataclass
class _Fault:
    status: int
    error: str
    retry_after: int | None
    remaining: int
    delay: float


@dataclass
class SocketConnection:
    """One Socket Mode websocket opened by the app."""

    number: int
    ticket: str
    ws: web.WebSocketResponse
    opened_at: float
    closed: bool = False
    received: list[Json] = field(default_factory=list)  # every JSON frame from the app (acks)


@dataclass
class FakeFile:
    """A file the app started uploading with ``files.getUploadURLExternal``."""

    id: str
    filename: str
    length: int  # as declared; the upload must match it
    alt_txt: str | None
    upload_key: str
    issued_at: float
    data: bytes | None = None  # set by the POST to the upload URL
    title: str | None = None
    channels: list[str] = field(default_factory=list)  # set by files.completeUploadExternal
    message_ts: str | None = None  # the file-share message in the channel

    @property
    def uploaded(self) -> bool:
        return self.data is not None

    @property
    def completed(self) -> bool:
        return bool(self.channels) or self.title is not None


class _TokenError(Exception):
    def __init__(self, error: str) -> None:
        self.error = error


Handler = Callable[[RecordedCall], Awaitable[Json]]


class FakeSlackWebAPI:
    """Fake Slack. ``async with FakeSlackWebAPI() as fake:`` or ``await fake.start()/stop()``.

    The waiting methods take ``timeout=`` (ruff ASYNC109 silenced): it is the assertion deadline a
    test states, and a miss raises a descriptive AssertionError/`SocketAckTimeout`.
    """

    def __init__(
        self,
        *,
        bot_token: str = DEFAULT_BOT_TOKEN,
        app_token: str = DEFAULT_APP_TOKEN,
        signing_secret: str = DEFAULT_SIGNING_SECRET,
        workspace: SlackWorkspace | None = None,
        known_channels: Iterable[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        # Not used by the fake itself: the secret the app under test should be configured with.
        self.signing_secret = signing_secret
        self.workspace = workspace or SlackWorkspace()
        self.extra_bot_tokens: set[str] = set()  # e.g. other installations' tokens
        # OAuth: codes `grant_installation` handed out (oauth.v2.access takes each once), and the
        # workspace each installed bot token belongs to (auth.test answers with it).
        self.oauth_codes: dict[str, tuple[SlackWorkspace, str, str]] = {}
        self.token_workspaces: dict[str, SlackWorkspace] = {}
        self.revoked_tokens: set[str] = set()  # -> "token_revoked"
        self.known_channels: set[str] | None = None if known_channels is None else set(known_channels)
        # Channels the bot is a member of (None: all). Sharing a file needs membership
        # (-> not_in_channel), as does posting without chat:write.public; DMs always count.
        self.member_channels: set[str] | None = None
        # Channels shared with another organisation (Slack Connect): conversations.info says
        # is_ext_shared. Slack needs channels:read / groups:read for it; the fake grants them.
        self.ext_shared_channels: set[str] = set()
        self.payloads = SlackPayloads(self.workspace, issuer=self)
        self._clock = clock
        self._clock_offset = 0.0

        self._calls: list[RecordedCall] = []
        self._faults: dict[str, list[_Fault]] = defaultdict(list)
        self._changed = asyncio.Condition()
        self._triggers: dict[str, float] = {}  # trigger_id -> issued at
        self._used_triggers: set[str] = set()
        self._response_urls: dict[str, list[float]] = {}  # id -> [issued_at, uses]
        self._response_origin: dict[str, _Origin] = {}  # id -> where the interaction came from
        self._ephemeral: dict[str, Json] = {}  # ts -> an ephemeral message (with "channel", "user")
        self._views: dict[str, Json] = {}
        self._files: dict[str, FakeFile] = {}  # file id -> file
        self._uploads: dict[str, str] = {}  # upload URL key -> file id
        self._messages: dict[str, dict[str, Json]] = defaultdict(dict)  # channel -> ts -> message
        self._ts_base = int(time.time())
        self._ts_counter = itertools.count(1)
        self._id_counter = itertools.count(1)
        self._tickets: set[str] = set()
        self.sockets: list[SocketConnection] = []
        self._pending_acks: dict[str, asyncio.Future[Json]] = {}
        self.acks: list[Json] = []

        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._handlers: dict[str, Handler] = {
            "auth.test": self._auth_test,
            "oauth.v2.access": self._oauth_v2_access,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "conversations.open": self._conversations_open,
            "conversations.info": self._conversations_info,
            "apps.connections.open": self._apps_connections_open,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
        }

    # lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> FakeSlackWebAPI:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{rid}", self._response_url)
        app.router.add_get("/link/", self._socket)
        app.router.add_post("/upload/v1/{key}", self._file_upload)
        # Short shutdown_timeout: aiohttp would otherwise wait up to 60 s for open handlers.
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        for fut in self._pending_acks.values():
            fut.cancel()
        for conn in self.sockets:
            if not conn.ws.closed:
                with contextlib.suppress(Exception):
                    await conn.ws.close(code=1001, message=b"server shutdown")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlackWebAPI:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeSlackWebAPI is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def base_url(self) -> str:
        """For ``AsyncWebClient(base_url=...)``; ends with ``/api/`` as slack_sdk requires."""
        return f"{self.url}/api/"

    def web_client(self, token: str | None = None, **kwargs: Any) -> Any:
        """An ``AsyncWebClient`` pointed at the fake (bot token by default)."""
        from slack_sdk.web.async_client import AsyncWebClient

        return AsyncWebClient(token=token or self.bot_token, base_url=self.base_url, **kwargs)

    @contextlib.asynccontextmanager
    async def socket_mode(self, app: Any, *, app_token: str | None = None) -> AsyncIterator[Any]:
        """Run ``AsyncSocketModeHandler(app)`` against the fake: connected (hello received) inside
        the block, closed on exit. The handler reaches the fake through ``app.client``'s base_url."""
        from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

        handler = AsyncSocketModeHandler(app, app_token=app_token or self.app_token)
        before = len(self.sockets)
        await handler.connect_async()  # type: ignore[no-untyped-call]
        try:
            await self.wait_socket_connections(before + 1)
            yield handler
        finally:
            await handler.close_async()  # type: ignore[no-untyped-call]

    def now(self) -> float:
        return self._clock() + self._clock_offset

    def advance_clock(self, seconds: float) -> None:
        """Move the fake's clock (trigger_id and response_url expiry) without sleeping."""
        self._clock_offset += seconds

    # recording ----------------------------------------------------------------------------------
    def calls(self, method: str | None = None) -> list[RecordedCall]:
        """Recorded calls, oldest first; all of them, or those to one method (``"response_url"`` too)."""
        return [c for c in self._calls if method is None or c.method == method]

    def calls_since(self, index: int) -> list[RecordedCall]:
        """Calls recorded after the first ``index`` (with ``len(fake.calls_since(0))`` as the next
        index): what one step of a long run caused, without copying the whole record each time (a
        poller reads each call once, however many there are)."""
        return self._calls[index:]

    def methods(self) -> list[str]:
        return [c.method for c in self._calls]

    async def wait_for(self, method: str, count: int = 1, timeout: float = 3.0) -> list[RecordedCall]:
        """Wait until at least `count` calls to `method` were answered; returns all of them."""

        def enough() -> bool:
            return len(self.calls(method)) >= count

        try:
            async with self._changed:
                await asyncio.wait_for(self._changed.wait_for(enough), timeout)
        except TimeoutError:
            raise AssertionError(
                f"expected {count} {method} call(s) within {timeout}s, got {len(self.calls(method))}; "
                f"calls so far: {self.methods()}"
            ) from None
        return self.calls(method)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 3.0, what: str = "") -> None:
        """Wait until ``predicate()`` holds, checked after every request the fake answers."""
        try:
            async with self._changed:
                await asyncio.wait_for(self._changed.wait_for(predicate), timeout)
        except TimeoutError:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or 'a condition'}") from None

    def reset(self) -> None:
        """Forget recorded calls, acks and pending faults. Issued trigger ids, response_urls,
        views, messages and socket connections stay valid."""
        self._calls.clear()
        self._faults.clear()
        self.acks.clear()

    def messages(self, channel: str | None = None) -> list[Json]:
        """Messages currently in the fake's channels (posted, updated, not deleted)."""
        chans = [channel] if channel is not None else list(self._messages)
        return [m for ch in chans for m in self._messages.get(ch, {}).values()]

    def views(self) -> dict[str, Json]:
        """Views the app has opened/pushed/updated, and ones built by payload builders, by id."""
        return dict(self._views)

    def files(self, channel: str | None = None) -> list[FakeFile]:
        """Files shared by ``files.completeUploadExternal`` (to ``channel``, or anywhere), oldest first."""
        return [f for f in self._files.values() if f.channels and (channel is None or channel in f.channels)]

    def pending_files(self) -> list[FakeFile]:
        """Files whose upload was started but never completed (Slack discards these)."""
        return [f for f in self._files.values() if not f.completed]

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def stub(self, method: str, response: Json | Handler) -> None:
        """Serve another Web API method (token-checked and recorded like the built-in ones):
        a fixed response dict, or ``async def handler(call: RecordedCall) -> dict``."""
        if callable(response):
            self._handlers[method] = response
            return
        fixed = dict(response)

        async def handler(call: RecordedCall) -> Json:
            return copy.deepcopy(fixed)  # a fresh copy per call

        self._handlers[method] = handler

    # fault injection ----------------------------------------------------------------------------
    def fail_next(
        self,
        method: str,
        *,
        status: int | None = None,
        error: str | None = None,
        retry_after: int | None = 1,
        times: int = 1,
        delay: float = 0.0,
    ) -> None:
        """Make the next `times` calls to `method` (or ``"response_url"``) fail.

        * default: HTTP 429 ``{"ok": false, "error": "ratelimited"}`` + ``Retry-After: <retry_after>``
          (slack_sdk parses it with ``int()``, so it must be whole seconds);
        * ``error="invalid_auth"``: HTTP 200 with that error (how Slack reports most errors);
        * ``status=401/403/5xx``: that status with an error body (``invalid_auth``/``access_denied``/
          ``internal_error`` unless `error` is given);
        * ``delay``: seconds to wait before answering (client timeouts).

        ``method="file_upload"`` targets the POST of a file's bytes to its upload URL.
        """
        if status is None:
            status = 200 if error is not None else 429
        if error is None:
            error = {429: "ratelimited", 401: "invalid_auth", 403: "access_denied"}.get(
                status, "internal_error" if status >= 500 else "fake_failure"
            )
        self._faults[method].append(
            _Fault(status, error, retry_after if status == 429 else None, times, delay)
        )

    def _take_fault(self, method: str) -> _Fault | None:
        queue = self._faults.get(method)
        if not queue:
            return None
        fault = queue[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            queue.pop(0)
        return fault

    async def _answer(self, call: RecordedCall, fault: _Fault | None) -> web.Response:
        headers: dict[str, str] = {}
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            call.status, call.response, call.injected = (
                fault.status,
                {"ok": False, "error": fault.error},
                True,
            )
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
        self._calls.append(call)
        await self._notify()
        return web.json_response(call.response, status=call.status, headers=headers)

    # ids handed out to payload builders (the `_Issuer` protocol) --------------------------------
    def new_trigger_id(self) -> str:
        trigger = f"{next(self._id_counter)}.{self._ts_base}.{secrets.token_hex(16)}"
        self._triggers[trigger] = self.now()
        return trigger

    def new_response_url(
        self,
        *,
        channel: str | None = None,
        user: str | None = None,
        message_ts: str | None = None,
        ephemeral: bool = False,
    ) -> str:
        rid = f"{next(self._id_counter)}-{secrets.token_hex(8)}"
        self._response_urls[rid] = [self.now(), 0]
        self._response_origin[rid] = _Origin(channel, user, message_ts, ephemeral)
        return f"{self.url}/response/{rid}"

    def ephemerals(self, channel: str | None = None, user: str | None = None) -> list[Json]:
        """Ephemeral messages as their users see them now (replaced in place, not deleted), oldest
        first; each carries ``channel`` and ``user`` besides Slack's message fields."""
        return [
            m
            for m in self._ephemeral.values()
            if (channel is None or m["channel"] == channel) and (user is None or m["user"] == user)
        ]

    def _add_ephemeral(self, channel: str, user: str, call: RecordedCall) -> str:
        ts = self.new_ts()
        self._ephemeral[ts] = {**self._message(call, ts), "channel": channel, "user": user}
        return ts

    def new_ts(self) -> str:
        return f"{self._ts_base}.{next(self._ts_counter):06d}"

    def register_view(self, view: Json) -> None:
        self._views[view["id"]] = view

    def register_message(self, channel: str, message: Json) -> None:
        self._messages[channel][message["ts"]] = message

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._id_counter):04d}{secrets.token_hex(3).upper()}"

    # Web API ------------------------------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        raw = await request.read()
        ctype = request.content_type
        params: Json = dict(request.query)
        if raw:
            if ctype == "application/json":
                params.update(json.loads(raw))
            elif ctype == "application/x-www-form-urlencoded":
                params.update(parse_qsl(raw.decode(), keep_blank_values=True))
        token = params.pop("token", None)
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth.removeprefix("Bearer ")
        call = RecordedCall(
            method=method,
            http_method=request.method,
            path=request.path,
            params=params,
            headers=dict(request.headers),
            token=token,
            raw_body=raw,
            content_type=ctype,
            at=time.monotonic(),
        )
        fault = self._take_fault(method)
        if fault is None:
            handler = self._handlers.get(method)
            if handler is None:
                call.response = {"ok": False, "error": "unknown_method"}
            else:
                try:
                    if method != "oauth.v2.access":  # the app's client id and secret, no token
                        self._check_token(method, token)
                    call.response = await handler(call)
                except _TokenError as e:
                    call.response = {"ok": False, "error": e.error}
        return await self._answer(call, fault)

    def _check_token(self, method: str, token: str | None) -> None:
        if not token:
            raise _TokenError("not_authed")
        if token in self.revoked_tokens:
            raise _TokenError("token_revoked")
        if method == "apps.connections.open":
            if token == self.app_token:
                return
            raise _TokenError("not_allowed_token_type" if token.startswith("xox") else "invalid_auth")
        if token == self.bot_token or token in self.extra_bot_tokens:
            return
        raise _TokenError("not_allowed_token_type" if token.startswith("xapp-") else "invalid_auth")

    @staticmethod
    def _invalid(error: str, messages: list[str]) -> Json:
        return {"ok": False, "error": error, "response_metadata": {"messages": messages}}

    def _resolve_channel(self, channel: Any) -> str | None:
        """The channel a post lands in, or None (-> channel_not_found)."""
        if not isinstance(channel, str) or not channel:
            return None
        if channel[0] in "UW":  # posting to a user id lands in the app's DM with that user
            return self._dm_channel(channel)
        if self.known_channels is not None and channel not in self.known_channels:
            return None
        return channel

    @staticmethod
    def _dm_channel(user_id: str) -> str:
        return "D" + user_id[1:]

    def _message(self, call: RecordedCall, ts: str) -> Json:
        ws = self.workspace
        msg: Json = {
            "type": "message",
            "user": ws.bot_user_id,
            "bot_id": ws.bot_id,
            "app_id": ws.api_app_id,
            "team": ws.team_id,
            "text": call.get("text", ""),
            "ts": ts,
        }
        for key in ("blocks", "attachments", "metadata"):
            if key in call.params:
                msg[key] = decode_json_field(call.params[key])
        if call.get("thread_ts"):
            msg["thread_ts"] = call["thread_ts"]
        return msg

    def _content_errors(self, call: RecordedCall) -> Json | None:
        if not any(call.get(k) for k in ("text", "blocks", "attachments")):
            return {"ok": False, "error": "no_text"}
        problems = validate_blocks(call.params.get("blocks"), max_blocks=MAX_MESSAGE_BLOCKS)
        return self._invalid("invalid_blocks", problems) if problems else None

    def grant_installation(
        self, workspace: SlackWorkspace, bot_token: str, installer: str = "U0INSTALLER"
    ) -> str:
        """What Slack does when ``installer`` of ``workspace`` approves the install: a code for the
        app's redirect URL, which ``oauth.v2.access`` exchanges (once) for ``bot_token``."""
        code = f"code-{secrets.token_hex(8)}"
        self.oauth_codes[code] = (workspace, bot_token, installer)
        return code

    async def _oauth_v2_access(self, call: RecordedCall) -> Json:
        granted = self.oauth_codes.pop(str(call.get("code", "")), None)
        if granted is None:
            return {"ok": False, "error": "invalid_code"}
        ws, token, installer = granted
        self.extra_bot_tokens.add(token)
        self.token_workspaces[token] = ws
        return {
            "ok": True,
            "access_token": token,
            "token_type": "bot",
            "scope": "commands,chat:write",
            "bot_user_id": ws.bot_user_id,
            "app_id": ws.api_app_id,
            "team": {"id": ws.team_id, "name": ws.team_name},
            "enterprise": None,
            "is_enterprise_install": False,
            "authed_user": {"id": installer},
        }

    async def _auth_test(self, call: RecordedCall) -> Json:
        ws = self.token_workspaces.get(call.token or "", self.workspace)
        return {
            "ok": True,
            "url": f"https://{ws.team_domain}.slack.com/",
            "team": ws.team_name,
            "user": "convene",
            "team_id": ws.team_id,
            "user_id": ws.bot_user_id,
            "bot_id": ws.bot_id,
            "enterprise_id": ws.enterprise_id,
            "is_enterprise_install": False,
        }

    async def _chat_post_message(self, call: RecordedCall) -> Json:
        channel = self._resolve_channel(call.get("channel"))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if (err := self._content_errors(call)) is not None:
            return err
        ts = self.new_ts()
        msg = self._message(call, ts)
        result: Json = {"ok": True, "channel": channel, "ts": ts}
        if isinstance(msg.get("text"), str) and len(msg["text"]) > MAX_MESSAGE_TEXT:
            msg["text"] = msg["text"][:MAX_MESSAGE_TEXT]
            result["warning"] = "message_truncated"
            result["response_metadata"] = {"warnings": ["message_truncated"]}
        self._messages[channel][ts] = msg
        result["message"] = msg
        return result

    async def _chat_post_ephemeral(self, call: RecordedCall) -> Json:
        channel = self._resolve_channel(call.get("channel"))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if not call.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        if (err := self._content_errors(call)) is not None:
            return err
        return {"ok": True, "message_ts": self._add_ephemeral(channel, str(call["user"]), call)}

    async def _chat_update(self, call: RecordedCall) -> Json:
        channel, ts = call.get("channel"), call.get("ts")
        if not isinstance(channel, str) or ts not in self._messages.get(channel, {}):
            return {"ok": False, "error": "message_not_found"}
        if (err := self._content_errors(call)) is not None:
            return err
        msg = self._messages[channel][ts]
        msg.update(self._message(call, ts))
        msg["edited"] = {"user": self.workspace.bot_user_id, "ts": self.new_ts()}
        return {"ok": True, "channel": channel, "ts": ts, "text": msg.get("text", ""), "message": msg}

    async def _chat_delete(self, call: RecordedCall) -> Json:
        channel, ts = call.get("channel"), call.get("ts")
        if not isinstance(channel, str) or ts not in self._messages.get(channel, {}):
            return {"ok": False, "error": "message_not_found"}
        del self._messages[channel][ts]
        return {"ok": True, "channel": channel, "ts": ts}

    def _consume_trigger(self, trigger_id: Any, *, dry_run: bool) -> str | None:
        """Slack's trigger rules: issued by Slack, used within 3 s, exchanged once."""
        if not isinstance(trigger_id, str) or trigger_id not in self._triggers:
            return "invalid_trigger_id"
        if trigger_id in self._used_triggers:
            return "exchanged_trigger_id"
        if self.now() - self._triggers[trigger_id] > TRIGGER_TTL:
            return "expired_trigger_id"
        if not dry_run:
            self._used_triggers.add(trigger_id)
        return None

    def _store_view(self, view: Json, *, view_id: str | None = None, previous: Json | None = None) -> Json:
        ws = self.workspace
        vid = view_id or self._new_id("V")
        stored: Json = {
            "id": vid,
            "team_id": ws.team_id,
            "type": view.get("type"),
            "title": view.get("title"),
            "submit": view.get("submit"),
            "close": view.get("close"),
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "previous_view_id": previous["id"] if previous else None,
            "root_view_id": (previous or {}).get("root_view_id") or vid,
            "app_id": ws.api_app_id,
            "app_installed_team_id": ws.team_id,
            "bot_id": ws.bot_id,
        }
        self._views[vid] = stored
        return stored

    async def _open_or_push(self, call: RecordedCall) -> Json:
        if (trigger_error := self._consume_trigger(call.get("trigger_id"), dry_run=True)) is not None:
            return {"ok": False, "error": trigger_error}
        view = call.view
        if problems := validate_view(view):
            return self._invalid("invalid_arguments", problems)
        self._consume_trigger(call.get("trigger_id"), dry_run=False)
        return {"ok": True, "view": self._store_view(view)}

    async def _views_open(self, call: RecordedCall) -> Json:
        return await self._open_or_push(call)

    async def _views_push(self, call: RecordedCall) -> Json:
        return await self._open_or_push(call)

    async def _views_update(self, call: RecordedCall) -> Json:
        view_id, external_id = call.get("view_id"), call.get("external_id")
        current: Json | None = None
        if view_id:
            current = self._views.get(view_id)
        elif external_id:
            current = next((v for v in self._views.values() if v.get("external_id") == external_id), None)
        else:
            return {"ok": False, "error": "invalid_arguments"}
        if current is None:
            return {"ok": False, "error": "not_found"}
        if call.get("hash") and call["hash"] != current.get("hash"):
            return {"ok": False, "error": "hash_conflict"}
        view = call.view
        if problems := validate_view(view):
            return self._invalid("invalid_arguments", problems)
        stored = self._store_view(view, view_id=current["id"])
        stored["previous_view_id"], stored["root_view_id"] = (
            current.get("previous_view_id"),
            current.get("root_view_id", current["id"]),
        )
        return {"ok": True, "view": stored}

    async def _conversations_open(self, call: RecordedCall) -> Json:
        users = call.get("users")
        if isinstance(users, list):
            users = ",".join(users)
        if not users:
            if call.get("channel"):
                return {"ok": True, "channel": {"id": call["channel"]}}
            return {"ok": False, "error": "users_list_not_supplied"}
        ids = [u.strip() for u in str(users).split(",") if u.strip()]
        channel = self._dm_channel(ids[0]) if len(ids) == 1 else "G" + "".join(sorted(i[1:4] for i in ids))
        return {"ok": True, "no_op": False, "already_open": False, "channel": {"id": channel}}

    async def _conversations_info(self, call: RecordedCall) -> Json:
        channel = call.get("channel")
        if not isinstance(channel, str) or not channel:
            return {"ok": False, "error": "channel_not_found"}
        if self.known_channels is not None and channel not in self.known_channels and channel[0] != "D":
            return {"ok": False, "error": "channel_not_found"}
        shared = channel in self.ext_shared_channels
        info: Json = {
            "id": channel,
            "is_channel": channel[0] == "C",
            "is_group": channel[0] == "G",
            "is_im": channel[0] == "D",
            "is_private": channel[0] == "G",
            "is_shared": shared,
            "is_ext_shared": shared,
            "is_org_shared": False,
            "is_pending_ext_shared": False,
            "context_team_id": self.workspace.team_id,
        }
        return {"ok": True, "channel": info}

    async def _apps_connections_open(self, call: RecordedCall) -> Json:
        ticket = str(uuid.uuid4())
        self._tickets.add(ticket)
        return {"ok": True, "url": f"ws://127.0.0.1:{self._port}/link/?ticket={ticket}&app_id=fake"}

    # file uploads (files.getUploadURLExternal -> POST bytes -> files.completeUploadExternal) -----
    # Error names follow Slack's method pages where they list them (alt_txt_too_large, missing_argument,
    # invalid_arguments, channel_not_found, not_in_channel); file_not_found for an id Slack never
    # issued or never received bytes for, and the upload URL's 404/400 answers, are approximations.
    async def _files_get_upload_url_external(self, call: RecordedCall) -> Json:
        filename, raw_length = call.get("filename"), call.get("length")
        if not isinstance(filename, str) or not filename.strip():
            return {"ok": False, "error": "invalid_arguments"}
        try:
            length = int(str(raw_length))
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        if length <= 0:
            return {"ok": False, "error": "missing_argument"}
        if length > MAX_UPLOAD_BYTES:
            return {"ok": False, "error": "file_upload_size_restricted"}
        alt = call.get("alt_txt")
        if isinstance(alt, str) and len(alt) > MAX_ALT_TEXT:
            return {"ok": False, "error": "alt_txt_too_large"}
        file_id = self._new_id("F")
        key = secrets.token_urlsafe(16)
        self._files[file_id] = FakeFile(
            file_id, filename, length, alt if isinstance(alt, str) else None, key, self.now()
        )
        self._uploads[key] = file_id
        return {"ok": True, "upload_url": f"{self.url}/upload/v1/{key}", "file_id": file_id}

    async def _file_upload(self, request: web.Request) -> web.Response:
        """The upload URL: raw bytes, or multipart form data with the bytes in a ``filename`` field.
        Pre-signed like Slack's: no token needed (and none is recorded)."""
        key = request.match_info["key"]
        raw = await request.read()
        call = RecordedCall(
            method="file_upload",
            http_method=request.method,
            path=request.path,
            params={"key": key},
            headers=dict(request.headers),
            token=None,
            raw_body=raw,
            content_type=request.content_type,
            at=time.monotonic(),
        )
        fault = self._take_fault("file_upload")
        if fault is not None:
            return await self._answer(call, fault)
        data = raw
        if request.content_type.startswith("multipart/"):
            data = self._multipart_file(request.headers.get("Content-Type", ""), raw)
        file_id = self._uploads.get(key)
        entry = self._files.get(file_id) if file_id else None
        if entry is None or entry.completed or self.now() - entry.issued_at > UPLOAD_URL_TTL:
            status, text = 404, "upload url not found"
        elif len(data) != entry.length:
            status, text = 400, f"length mismatch: declared {entry.length}, received {len(data)}"
        else:
            entry.data = data
            status, text = 200, f"OK - {len(data)}"
        call.status, call.response = status, {"ok": status == 200, "text": text, "file_id": file_id}
        call.params["file_id"] = file_id
        self._calls.append(call)
        await self._notify()
        return web.Response(status=status, text=text, content_type="text/plain")

    @staticmethod
    def _multipart_file(content_type: str, raw: bytes) -> bytes:
        """The bytes of the ``filename`` (or ``file``) field of a multipart body."""
        message = email.message_from_bytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + raw, policy=email.policy.HTTP
        )
        for part in message.iter_parts() if message.is_multipart() else ():
            if part.get_param("name", header="content-disposition") in ("filename", "file"):
                payload = part.get_payload(decode=True)
                return payload if isinstance(payload, bytes) else b""
        return b""

    async def _files_complete_upload_external(self, call: RecordedCall) -> Json:
        files = decode_json_field(call.get("files"))
        if not isinstance(files, list) or not files or not all(isinstance(f, dict) for f in files):
            return {"ok": False, "error": "invalid_arguments"}
        entries: list[tuple[FakeFile, Any]] = []
        for f in files:
            entry = self._files.get(str(f.get("id")))
            if entry is None or not entry.uploaded or entry.completed:
                return {"ok": False, "error": "file_not_found"}
            entries.append((entry, f.get("title")))
        raw_channels = call.get("channel_id") or call.get("channels") or ""
        targets = [c.strip() for c in str(raw_channels).split(",") if c.strip()]
        thread_ts = call.get("thread_ts")
        resolved: list[str] = []
        for target in targets:
            channel = self._resolve_channel(target)
            if channel is None:
                return {"ok": False, "error": "channel_not_found"}
            if not self._is_member(channel):
                return {"ok": False, "error": "not_in_channel"}
            if thread_ts and thread_ts not in self._messages.get(channel, {}):
                return {"ok": False, "error": "invalid_arguments"}
            resolved.append(channel)
        if thread_ts and len(resolved) != 1:
            return {"ok": False, "error": "invalid_arguments"}
        comment = call.get("initial_comment")
        blocks = None if comment else decode_json_field(call.get("blocks"))
        if blocks is not None and (problems := validate_blocks(blocks, max_blocks=MAX_MESSAGE_BLOCKS)):
            return self._invalid("invalid_blocks", problems)
        for entry, title in entries:
            entry.title = str(title) if title else entry.filename
        for channel in resolved:
            ts = self.new_ts()
            ws = self.workspace
            msg: Json = {
                "type": "message",
                "subtype": "file_share",
                "upload": True,
                "user": ws.bot_user_id,
                "bot_id": ws.bot_id,
                "text": comment if isinstance(comment, str) else "",
                "files": [self._file_object(e) for e, _ in entries],
                "ts": ts,
            }
            if blocks is not None:
                msg["blocks"] = blocks
            if thread_ts:
                msg["thread_ts"] = thread_ts
            self._messages[channel][ts] = msg
            for entry, _ in entries:
                entry.channels.append(channel)
                entry.message_ts = entry.message_ts or ts
        # As on Slack, sharing completes asynchronously: "shares" is empty in this answer.
        return {"ok": True, "files": [{**self._file_object(e), "shares": {}} for e, _ in entries]}

    def _file_object(self, entry: FakeFile) -> Json:
        png = entry.data is not None and entry.data.startswith(b"\x89PNG")
        return {
            "id": entry.id,
            "name": entry.filename,
            "title": entry.title or entry.filename,
            "mimetype": "image/png" if png else "application/octet-stream",
            "filetype": "png" if png else "binary",
            "size": entry.length,
            "alt_txt": entry.alt_txt,
            "user": self.workspace.bot_user_id,
            "url_private": f"https://files.slack.com/files-pri/{self.workspace.team_id}-{entry.id}/{entry.filename}",
        }

    def _is_member(self, channel: str) -> bool:
        return channel.startswith("D") or self.member_channels is None or channel in self.member_channels

    # response_url -------------------------------------------------------------------------------
    async def _response_url(self, request: web.Request) -> web.Response:
        rid = request.match_info["rid"]
        raw = await request.read()
        try:
            params: Json = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            params = {"_invalid_json": raw.decode(errors="replace")}
        call = RecordedCall(
            method="response_url",
            http_method=request.method,
            path=request.path,
            params={"response_id": rid, **params},
            headers=dict(request.headers),
            token=None,
            raw_body=raw,
            content_type=request.content_type,
            at=time.monotonic(),
        )
        fault = self._take_fault("response_url")
        if fault is None:
            call.status, call.response = self._use_response_url(rid, call)
        return await self._answer(call, fault)

    def _use_response_url(self, rid: str, call: RecordedCall) -> tuple[int, Json]:
        # Error names here approximate hooks.slack.com (no_service/used_url/expired_url); not verified.
        entry = self._response_urls.get(rid)
        if entry is None:
            return 404, {"ok": False, "error": "no_service"}
        if self.now() - entry[0] > RESPONSE_URL_TTL:
            return 404, {"ok": False, "error": "expired_url"}
        if entry[1] >= RESPONSE_URL_MAX_USES:
            return 404, {"ok": False, "error": "used_url"}
        if problems := validate_blocks(call.params.get("blocks")):
            return 400, self._invalid("invalid_blocks", problems)
        entry[1] += 1
        self._respond(self._response_origin.get(rid) or _Origin(), call)
        return 200, {"ok": True}

    def _respond(self, origin: _Origin, call: RecordedCall) -> None:
        """What Slack does with a response_url message, given the interaction it came from."""
        params = call.params
        channel, user = origin.channel, origin.user
        if params.get("delete_original") in (True, "true"):
            if origin.message_ts is not None:
                if origin.ephemeral:
                    self._ephemeral.pop(origin.message_ts, None)
                elif channel is not None:
                    self._messages.get(channel, {}).pop(origin.message_ts, None)
            return
        if params.get("replace_original") in (True, "true") and origin.message_ts is not None:
            ts = origin.message_ts
            if origin.ephemeral and ts in self._ephemeral:
                old = self._ephemeral[ts]
                self._ephemeral[ts] = {
                    **self._message(call, ts),
                    "channel": old["channel"],
                    "user": old["user"],
                }
                return
            if not origin.ephemeral and channel is not None and ts in self._messages.get(channel, {}):
                self._messages[channel][ts].update(self._message(call, ts))  # for everyone in the channel
                return
        if channel is None:
            return
        if params.get("response_type") == "in_channel":
            ts = self.new_ts()
            self._messages[channel][ts] = self._message(call, ts)
        elif user is not None:
            self._add_ephemeral(channel, user, call)

    # Socket Mode --------------------------------------------------------------------------------
    async def _socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            # Only URLs from apps.connections.open work, so a hard-coded wss URL fails here too.
            return web.Response(status=401, text="invalid ticket")
        self._tickets.discard(ticket)
        ws = web.WebSocketResponse(timeout=1.0)
        await ws.prepare(request)
        conn = SocketConnection(len(self.sockets) + 1, ticket, ws, time.monotonic())
        self.sockets.append(conn)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": sum(1 for c in self.sockets if not c.closed),
                "debug_info": {
                    "host": "fake-applink",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": self.workspace.api_app_id},
            }
        )
        await self._notify()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except json.JSONDecodeError:
                    continue
                conn.received.append(data)
                eid = data.get("envelope_id") if isinstance(data, dict) else None
                if isinstance(eid, str):
                    self.acks.append(data)
                    fut = self._pending_acks.pop(eid, None)
                    if fut is not None and not fut.done():
                        fut.set_result(data)
        finally:
            conn.closed = True
            await self._notify()
        return ws

    def open_sockets(self) -> list[SocketConnection]:
        return [c for c in self.sockets if not c.closed and not c.ws.closed]

    async def wait_socket_connections(self, count: int = 1, timeout: float = 3.0) -> SocketConnection:
        """Wait until `count` connections were opened in total and one is open; returns the newest."""

        def ready() -> bool:
            return len(self.sockets) >= count and bool(self.open_sockets())

        try:
            async with self._changed:
                await asyncio.wait_for(self._changed.wait_for(ready), timeout)
        except TimeoutError:
            raise AssertionError(
                f"expected {count} Socket Mode connection(s) within {timeout}s, got {len(self.sockets)}"
            ) from None
        return self.open_sockets()[-1]

    async def socket_send(
        self,
        type: EnvelopeType,
        payload: Json,
        *,
        envelope_id: str | None = None,
        accepts_response_payload: bool | None = None,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
        timeout: float = ACK_DEADLINE,
    ) -> Json:
        """Push one envelope to the newest open connection and return the app's ack
        (``{"envelope_id": ..., "payload": {...}?}``). Raises `SocketAckTimeout` after `timeout`."""
        conn = await self.wait_socket_connections(1, timeout)
        eid = envelope_id or str(uuid.uuid4())
        if accepts_response_payload is None:
            # As Slack does: commands and view submissions may answer inside the ack; block_actions not.
            accepts_response_payload = type == "slash_commands" or (
                type == "interactive" and payload.get("type") in {"view_submission", "block_suggestion"}
            )
        envelope: Json = {
            "envelope_id": eid,
            "payload": payload,
            "type": type,
            "accepts_response_payload": accepts_response_payload,
        }
        if type == "events_api":
            envelope["retry_attempt"] = retry_attempt or 0
            envelope["retry_reason"] = retry_reason or ""
        fut: asyncio.Future[Json] = asyncio.get_running_loop().create_future()
        self._pending_acks[eid] = fut
        await conn.ws.send_json(envelope)
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise SocketAckTimeout(f"no ack for {type} envelope {eid} within {timeout}s") from None
        finally:
            self._pending_acks.pop(eid, None)

    async def socket_deliver(self, inbound: SlackInbound, *, timeout: float = ACK_DEADLINE) -> Json:
        """`socket_send` for a payload builder's result (retry fields carried over for events)."""
        return await self.socket_send(
            inbound.envelope_type,
            inbound.payload,
            retry_attempt=inbound.retry_num,
            retry_reason=inbound.retry_reason,
            timeout=timeout,
        )

    async def socket_disconnect(
        self,
        reason: str = "refresh_requested",
        *,
        wait_reconnect: bool = True,
        timeout: float = 3.0,
    ) -> SocketConnection | None:
        """Send Slack's ``disconnect`` message; by default wait until the app has reconnected
        (a new connection opened, the old one closed) and return the new connection."""
        conn = await self.wait_socket_connections(1, timeout)
        before = len(self.sockets)
        await conn.ws.send_json(
            {"type": "disconnect", "reason": reason, "debug_info": {"host": "fake-applink"}}
        )
        if not wait_reconnect:
            return None
        new = await self.wait_socket_connections(before + 1, timeout)

        def old_closed() -> bool:
            return conn.closed

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(old_closed), timeout)
        return new

    async def socket_close(self, code: int = 1011) -> None:
        """Drop the newest connection abruptly with a close frame (no ``disconnect`` message first)."""
        conn = await self.wait_socket_connections(1)
        await conn.ws.close(code=code, message=b"fake drop")
