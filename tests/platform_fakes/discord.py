# Test helpers take `timeout=` on purpose (`await rec.callback(timeout=1)` reads best in tests).
"""A fake Discord (REST v10 + Gateway v10) on 127.0.0.1 that drives an unmodified discord.py bot.

Why: dpytest cannot create interactions (platform-testing.md §4.1), so slash commands,
buttons and modals are tested end to end against this loopback fake instead. It enforces
the Discord rules the adapter must respect (3 s first response, single ack, 15 min token,
message/component/modal limits, 429s) and records every request for assertions.

Usage::

    async with FakeDiscord() as fake, fake.patch_discord():
        async with running_client(fake, bot):            # tests.platform_fakes.discord_client
            rec = await fake.interact(fake.slash("convene", "start"))
            body = await rec.callback()

Point discord.py at it with :meth:`FakeDiscord.patch_discord` (sets ``Route.BASE`` and
``DiscordWebSocket.DEFAULT_GATEWAY``), or pass ``api_base_url=fake.rest_base`` and
``gateway_url=fake.gateway_url`` to the adapter config.

Note: this module is ``tests.platform_fakes.discord``; ``import discord`` inside it is the
real library (absolute imports).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import discord
import discord.gateway
import discord.http
import yarl
from aiohttp import BodyPartReader, WSMsgType, web

from tests.platform_fakes import discord_payloads as p
from tests.platform_fakes import discord_rules as rules
from tests.platform_fakes.discord_payloads import JSON

T = TypeVar("T")

# Gateway opcodes.
OP_DISPATCH, OP_HEARTBEAT, OP_IDENTIFY, OP_PRESENCE, OP_RESUME = 0, 1, 2, 3, 6
OP_RECONNECT, OP_REQUEST_MEMBERS, OP_INVALID_SESSION, OP_HELLO, OP_HEARTBEAT_ACK = 7, 8, 9, 10, 11

# Intents.
INTENT_GUILD_MEMBERS, INTENT_GUILD_PRESENCES, INTENT_MESSAGE_CONTENT = 1 << 1, 1 << 8, 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT
INTENT_GUILD_MESSAGES, INTENT_DIRECT_MESSAGES = 1 << 9, 1 << 12

#: Message-creating/editing routes whose bodies are checked for ``allowed_mentions``.
MESSAGE_ROUTES = frozenset(
    {
        "POST /channels/{channel_id}/messages",
        "PATCH /channels/{channel_id}/messages/{message_id}",
        "POST /webhooks/{app_id}/{token}",
        "PATCH /webhooks/{app_id}/{token}/messages/{message_id}",
    }
)
CALLBACK_ROUTE = "POST /interactions/{interaction_id}/{token}/callback"


class FakeDiscordError(RuntimeError):
    """Misuse of the fake by a test (not a Discord error)."""


# ----------------------------------------------------------------------------- records


@dataclass
class RestCall:
    """One REST request as received, with the fake's answer."""

    method: str
    path: str  # without the /api/v10 prefix, e.g. "/channels/1/messages"
    route: str  # "METHOD /template", e.g. "POST /channels/{channel_id}/messages"; "" if unknown
    query: dict[str, str]
    json: Any
    headers: dict[str, str]
    # Multipart uploads: {"name" ("files[0]"), "filename", "content_type", "size", "data" (bytes)}.
    files: list[JSON] = field(default_factory=list)
    status: int = 0
    response: Any = None
    at: float = 0.0  # fake clock

    @property
    def message_body(self) -> JSON | None:
        """The message part of the body (callback ``data`` for types 4/7), else None."""
        if self.route == CALLBACK_ROUTE:
            body = self.json or {}
            return body.get("data") if body.get("type") in (4, 7) else None
        return self.json if self.route in MESSAGE_ROUTES else None


@dataclass
class InteractionRecord:
    """An interaction dispatched by :meth:`FakeDiscord.interact`, and what the bot did with it."""

    payload: JSON
    dispatched_at: float
    _fake: FakeDiscord = field(repr=False)
    response: JSON | None = None  # first accepted callback body {"type", "data"}
    original: JSON | None = None  # the original response message (types 4/5, or the updated one for 7)
    followups: list[JSON] = field(default_factory=list)  # message objects created via the webhook

    @property
    def id(self) -> str:
        return str(self.payload["id"])

    @property
    def token(self) -> str:
        return str(self.payload["token"])

    @property
    def attempts(self) -> list[RestCall]:
        """Every callback POST for this interaction, including rejected ones (429, 10062, 40060)."""
        prefix = f"/interactions/{self.id}/"
        return [c for c in self._fake.calls if c.path.startswith(prefix)]

    @property
    def callback_type(self) -> int | None:
        return None if self.response is None else int(self.response["type"])

    async def callback(self, timeout: float = 3.0) -> JSON:
        """The first accepted callback body ``{"type": ..., "data": ...}``; TimeoutError if none."""
        return await self._fake.wait_until(lambda: self.response, timeout, f"callback for {self.id}")

    async def wait_attempt(self, timeout: float = 3.0) -> RestCall:
        """The first callback attempt, accepted or rejected (e.g. 10062/40060)."""
        return await self._fake.wait_until(
            lambda: self.attempts[0] if self.attempts else None, timeout, f"callback attempt for {self.id}"
        )

    async def wait_followups(self, n: int = 1, timeout: float = 3.0) -> list[JSON]:
        return await self._fake.wait_until(
            lambda: self.followups if len(self.followups) >= n else None, timeout, f"{n} follow-ups"
        )

    async def wait_original(self, predicate: Callable[[JSON], bool] = bool, timeout: float = 3.0) -> JSON:
        """The original response once ``predicate(original)`` holds (e.g. no longer loading)."""
        return await self._fake.wait_until(
            lambda: self.original if self.original is not None and predicate(self.original) else None,
            timeout,
            "original response",
        )


@dataclass
class _FailRule:
    route: str
    times: int
    retry_after: float
    status: int
    is_global: bool


@dataclass
class _Session:
    id: str
    identify: JSON
    seq: int = 0
    log: list[JSON] = field(default_factory=list)  # sent dispatch frames, for RESUME replay
    ws: web.WebSocketResponse | None = None
    dead: bool = False  # client closed with 1000/1001 or the fake invalidated it

    def owns(self, guild_id: Any) -> bool:
        """Whether this session's shard receives ``guild_id``'s events: Discord's rule,
        ``(guild_id >> 22) % num_shards == shard_id``. Unsharded sessions receive every guild."""
        shard = self.identify.get("shard")
        if guild_id is None or not isinstance(shard, list) or len(shard) != 2:
            return True
        try:
            return (int(guild_id) >> 22) % int(shard[1]) == int(shard[0])
        except (TypeError, ValueError):
            return True


@dataclass
class GatewayConnection:
    query: dict[str, str]
    path: str
    ws: web.WebSocketResponse = field(repr=False)
    received: list[JSON] = field(default_factory=list)  # every frame from the bot
    heartbeats: int = 0
    session: _Session | None = None
    close_code: int | None = None
    closed_by_fake: bool = False


# ------------------------------------------------------------------------------ server


def _json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    # Exactly "application/json": discord.py compares the header verbatim, and aiohttp's
    # json_response adds "; charset=utf-8", which makes discord.py treat the body as text.
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def _compile(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$")


Handler = Callable[[RestCall, dict[str, str]], Awaitable[web.StreamResponse]]


class FakeDiscord:
    """Fake Discord REST + gateway on an ephemeral 127.0.0.1 port. See the module docstring.

    World (all payload dicts, ids as strings): ``app_id``, ``bot_user``, ``owner`` (guild
    owner and app owner), ``user`` (a plain member, "alice"), ``guild``, ``channel`` (its
    #general). Pass ``guilds=`` (built with :mod:`discord_payloads`) for another world; the
    first guild/its first channel become the defaults for the interaction builders.
    """

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        guilds: Sequence[JSON] | None = None,
        interaction_deadline: float = 3.0,
        token_ttl: float = 15 * 60,
        nonce_window: float = 120.0,
        privileged_intents: int = 0,
        heartbeat_interval_ms: int = 41_250,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token = token
        self.interaction_deadline = interaction_deadline
        self.token_ttl = token_ttl
        #: How long an enforced nonce is remembered. Discord says "the past few minutes" without a
        #: figure; the fake takes a short window so that tests show re-sends come well within it.
        self.nonce_window = nonce_window
        #: privileged intents "enabled in the developer portal"; others → close 4014.
        self.privileged_intents = privileged_intents
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self._clock = clock
        self._offset = 0.0

        self.app_id = p.snowflake()
        self.bot_user = p.user(self.app_id, "convene-bot", bot=True)
        self.owner = p.user(username="owner")
        self.user = p.user(username="alice")
        if guilds is None:
            gid = p.snowflake()
            guilds = [
                p.guild(
                    gid,
                    owner_id=self.owner["id"],
                    channels=[p.text_channel(name="general", guild_id=gid)],
                    members=[p.member(self.bot_user), p.member(self.owner), p.member(self.user)],
                )
            ]
        self.guilds: dict[str, JSON] = {g["id"]: g for g in guilds}
        self.channels: dict[str, JSON] = {}
        for g in guilds:
            for c in g["channels"]:
                self.channels[c["id"]] = {**c, "guild_id": g["id"]}
        self.guild = guilds[0]
        self.channel = self.channels[self.guild["channels"][0]["id"]]
        self.users: dict[str, JSON] = {self.bot_user["id"]: self.bot_user}
        for g in guilds:
            for m in g["members"]:
                self.users[m["user"]["id"]] = m["user"]
        #: user ids whose DMs are closed: POST to their DM channel → 403 50007.
        self.dms_closed: set[str] = set()

        # Records.
        self.calls: list[RestCall] = []
        self.unhandled: list[RestCall] = []
        self.connections: list[GatewayConnection] = []
        self.identifies: list[JSON] = []
        self.resumes: list[JSON] = []
        self.interactions: dict[str, InteractionRecord] = {}
        self.messages: dict[str, JSON] = {}
        #: bytes of every uploaded attachment, by attachment id (see :meth:`attachment_data`).
        self.uploads: dict[str, bytes] = {}
        self.global_commands: list[JSON] = []
        self.guild_commands: dict[str, list[JSON]] = {}

        self._by_token: dict[str, InteractionRecord] = {}
        self._nonces: dict[tuple[str, str], tuple[str, float]] = {}  # (author, nonce) -> (message id, at)
        self._dm_by_user: dict[str, str] = {}
        self._sessions: dict[str, _Session] = {}
        self._fail_rules: list[_FailRule] = []
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._routes: list[tuple[str, str, re.Pattern[str], Handler]] = []
        self._register_routes()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        app = web.Application(client_max_size=4 * rules.MAX_UPLOAD)  # the fake applies the limit itself
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        app.router.add_get("/", self._gateway)
        app.router.add_get("/resume/", self._gateway)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        for conn in self.connections:
            if not conn.ws.closed:
                conn.closed_by_fake = True
                await conn.ws.close(code=1001, message=b"fake shutting down")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def rest_base(self) -> str:
        """Value for ``discord.http.Route.BASE`` / the adapter's ``api_base_url`` (includes /api/v10)."""
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        """Value for ``DiscordWebSocket.DEFAULT_GATEWAY`` / the adapter's ``gateway_url``."""
        return f"ws://127.0.0.1:{self._port}/"

    @property
    def resume_gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/resume/"

    @contextlib.contextmanager
    def patch_discord(self) -> Iterator[None]:
        """Point discord.py (process-wide class attributes) at this fake; restored on exit."""
        route, ws_cls = discord.http.Route, discord.gateway.DiscordWebSocket
        old_base, old_gateway = route.BASE, ws_cls.DEFAULT_GATEWAY
        route.BASE = self.rest_base
        ws_cls.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        try:
            yield
        finally:
            route.BASE, ws_cls.DEFAULT_GATEWAY = old_base, old_gateway

    # -------------------------------------------------------------------- time/waits

    def now(self) -> float:
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward (token TTL tests without sleeping 15 min)."""
        self._offset += seconds

    def _bump(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_until(self, predicate: Callable[[], T | None], timeout: float = 3.0, what: str = "") -> T:
        """Wait until ``predicate()`` is truthy and return it (also usable for bot-side state)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    result = predicate()
                    if result:
                        return result
                    # Woken by any request/frame; the short poll also sees state outside the fake.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), 0.02)
        except TimeoutError:
            raise TimeoutError(
                f"fake Discord: timed out after {timeout}s waiting for {what or predicate}"
            ) from None

    async def wait_for_call(self, route: str, timeout: float = 3.0, *, after: int = 0) -> RestCall:
        """The first recorded call matching ``route`` (see :meth:`calls_to`) at index >= ``after``."""

        def find() -> RestCall | None:
            return next((c for c in self.calls[after:] if self._matches(route, c)), None)

        return await self.wait_until(find, timeout, route)

    async def wait_connected(self, timeout: float = 5.0) -> GatewayConnection:
        """A live gateway connection that has received READY or RESUMED."""

        def live() -> GatewayConnection | None:
            return next(
                (
                    c
                    for c in reversed(self.connections)
                    if c.session is not None and c.session.ws is c.ws and not c.ws.closed
                ),
                None,
            )

        return await self.wait_until(live, timeout, "a connected bot")

    # ------------------------------------------------------------------ REST records

    @staticmethod
    def _matches(route: str, call: RestCall) -> bool:
        method, _, path = route.partition(" ") if " " in route else ("", "", route)
        if method and method.upper() != call.method:
            return False
        return path in (call.route.partition(" ")[2], call.path)

    def calls_to(self, route: str) -> list[RestCall]:
        """Calls matching ``"METHOD /template"``, ``"METHOD /concrete/path"`` or a path alone."""
        return [c for c in self.calls if self._matches(route, c)]

    def sent_messages(self) -> list[tuple[RestCall, JSON]]:
        """Every message body the bot sent or edited (channel posts, callbacks 4/7, follow-ups,
        edits): assert ``body.get("allowed_mentions") == {"parse": []}`` on all of them."""
        out = []
        for c in self.calls:
            body = c.message_body
            if body is not None and 200 <= c.status < 300:
                out.append((c, body))
        return out

    def pings(self) -> list[tuple[RestCall, rules.Pings]]:
        """Sent messages that would notify someone (allowed-mentions semantics)."""
        out = []
        for c, body in self.sent_messages():
            default = ("users", "roles", "everyone") if c.route.endswith("/messages") else ("users",)
            pg = rules.pings(body, default_parse=default)
            if pg.any:
                out.append((c, pg))
        return out

    def channel_messages(self, channel_id: str) -> list[JSON]:
        return [m for m in self.messages.values() if m["channel_id"] == channel_id]

    def attachment_data(self, message: JSON) -> list[bytes]:
        """The uploaded bytes of ``message``'s attachments, in order."""
        return [self.uploads[a["id"]] for a in message.get("attachments") or [] if a["id"] in self.uploads]

    def find_message(self, custom_id: str, viewer: str | None = None) -> JSON | None:
        """The newest stored message having a component with ``custom_id`` (that the user
        ``viewer`` can see, if given: ephemeral messages only show to their own user)."""
        for m in reversed(list(self.messages.values())):
            if viewer is not None and not self._sees(viewer, m):
                continue
            for c, _ in rules._walk(m.get("components") or [], ()):
                if c.get("custom_id") == custom_id:
                    return m
        return None

    @staticmethod
    def _sees(user_id: str, message: JSON) -> bool:
        if not message["flags"] & p.FLAG_EPHEMERAL:
            return True
        owner = (message.get("interaction_metadata") or {}).get("user") or {}
        return bool(owner.get("id") == user_id)

    def fail_next(
        self,
        route: str,
        times: int = 1,
        retry_after: float = 0.05,
        *,
        status: int = 429,
        is_global: bool = False,
    ) -> None:
        """Answer the next ``times`` calls matching ``route`` (as :meth:`calls_to`) with a 429
        (``Retry-After``, ``X-RateLimit-*``, ``Via``) or, with ``status=5xx``, a server error."""
        self._fail_rules.append(_FailRule(route, times, retry_after, status, is_global))

    # -------------------------------------------------------------- gateway (server)

    async def _send(self, ws: web.WebSocketResponse, frame: JSON) -> None:
        # Text frames: discord.py asks for compress=zlib-stream but only inflates binary frames.
        await ws.send_str(json.dumps(frame))

    async def _close(self, ws: web.WebSocketResponse, code: int, reason: bytes = b"") -> None:
        for conn in self.connections:
            if conn.ws is ws:
                conn.closed_by_fake = True
        await ws.close(code=code, message=reason)

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = GatewayConnection(dict(request.query), request.path, ws)
        self.connections.append(conn)
        self._bump()
        await self._send(
            ws,
            {"op": OP_HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}, "s": None, "t": None},
        )
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                conn.received.append(frame)
                await self._on_frame(conn, frame)
                self._bump()
        finally:
            conn.close_code = ws.close_code
            sess = conn.session
            if sess is not None and sess.ws is ws:
                sess.ws = None
                # A clean close *by the client* ends the session; other codes (4000 after op 7)
                # keep it resumable. (After a close by the fake, close_code is the client's echo.)
                if not conn.closed_by_fake and ws.close_code in (1000, 1001):
                    sess.dead = True
            self._bump()
        return ws

    async def _on_frame(self, conn: GatewayConnection, frame: JSON) -> None:
        op, d = frame.get("op"), frame.get("d")
        if not isinstance(d, dict):
            d = {}
        if op == OP_HEARTBEAT:
            conn.heartbeats += 1
            await self._send(conn.ws, {"op": OP_HEARTBEAT_ACK, "d": None, "s": None, "t": None})
        elif op == OP_IDENTIFY:
            await self._identify(conn, d)
        elif op == OP_RESUME:
            await self._resume(conn, d)
        elif op == OP_REQUEST_MEMBERS:
            g = self.guilds.get(str(d.get("guild_id")))
            if g is not None:
                chunk = {
                    "guild_id": g["id"],
                    "members": g["members"],
                    "chunk_index": 0,
                    "chunk_count": 1,
                    "not_found": [],
                    "nonce": d.get("nonce"),
                }
                await self._dispatch_to(conn.session, "GUILD_MEMBERS_CHUNK", chunk)

    async def _identify(self, conn: GatewayConnection, d: JSON) -> None:
        self.identifies.append(d)
        if d.get("token") != self.token:
            await self._close(conn.ws, 4004, b"Authentication failed.")
            return
        if int(d.get("intents", 0)) & PRIVILEGED_INTENTS & ~self.privileged_intents:
            await self._close(conn.ws, 4014, b"Disallowed intent(s).")
            return
        sess = _Session(id=p.token()[5:21], identify=d, ws=conn.ws)
        self._sessions[sess.id] = sess
        conn.session = sess
        ready: JSON = {
            "v": 10,
            "user": {**self.bot_user, "verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": gid, "unavailable": True} for gid in self.guilds if sess.owns(gid)],
            "session_id": sess.id,
            "session_type": "normal",
            "resume_gateway_url": self.resume_gateway_url,
            "application": {"id": self.app_id, "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "user_settings": {},
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "auth": {},
        }
        if "shard" in d:
            ready["shard"] = d["shard"]
        await self._dispatch_to(sess, "READY", ready)
        for g in self.guilds.values():
            if sess.owns(g["id"]):
                await self._dispatch_to(sess, "GUILD_CREATE", g)

    async def _resume(self, conn: GatewayConnection, d: JSON) -> None:
        self.resumes.append(d)
        sess = self._sessions.get(str(d.get("session_id")))
        if d.get("token") != self.token:
            await self._close(conn.ws, 4004, b"Authentication failed.")
            return
        if sess is None or sess.dead:
            await self._send(conn.ws, {"op": OP_INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        sess.ws = conn.ws
        conn.session = sess
        after = int(d.get("seq") or 0)
        for old in sess.log:  # replay what the bot missed while disconnected
            if old["s"] > after:
                await self._send(conn.ws, old)
        await self._dispatch_to(sess, "RESUMED", {})

    async def _dispatch_to(self, sess: _Session | None, event: str, data: JSON) -> int:
        if sess is None:
            raise FakeDiscordError("no gateway session")
        sess.seq += 1
        frame = {"op": OP_DISPATCH, "t": event, "s": sess.seq, "d": data}
        sess.log.append(frame)
        if sess.ws is not None and not sess.ws.closed:
            await self._send(sess.ws, frame)
        return sess.seq

    def _live_sessions(self) -> list[_Session]:
        return [s for s in self._sessions.values() if not s.dead]

    # ---------------------------------------------------------- gateway (test API)

    async def dispatch(self, event: str, data: JSON) -> None:
        """Send a dispatch event (op 0) to every live session. If a session is between
        connections (e.g. after op 7) the event is queued and replayed on RESUME."""
        sessions = self._live_sessions()
        if not sessions:
            raise FakeDiscordError(f"dispatch({event}): no bot is connected")
        # A guild's events go to the shard that holds the guild (all, when no session is sharded).
        guild = data.get("guild_id") if isinstance(data, dict) else None
        sessions = [s for s in sessions if s.owns(guild)]
        for s in sessions:
            await self._dispatch_to(s, event, data)

    async def reconnect(self) -> None:
        """Send op 7 RECONNECT; discord.py closes (code 4000) and RESUMEs on resume_gateway_url."""
        for s in self._live_sessions():
            if s.ws is not None:
                await self._send(s.ws, {"op": OP_RECONNECT, "d": None, "s": None, "t": None})

    async def invalidate_session(self, resumable: bool = False) -> None:
        """Send op 9 INVALID_SESSION; with ``resumable=False`` the bot must IDENTIFY again."""
        for s in self._live_sessions():
            if s.ws is not None:
                if not resumable:
                    s.dead = True
                await self._send(s.ws, {"op": OP_INVALID_SESSION, "d": resumable, "s": None, "t": None})

    async def close_gateway(self, code: int = 4000, *, kill_session: bool = False) -> None:
        """Close live gateway sockets with ``code`` (e.g. 4000 → the bot resumes)."""
        for s in self._live_sessions():
            if s.ws is not None:
                s.dead = s.dead or kill_session
                await self._close(s.ws, code)

    # ---------------------------------------------------------- interactions (test API)

    def _ctx(self, user: JSON | None, channel: JSON | None) -> dict[str, Any]:
        ch = channel or self.channel
        return {
            "user": user or self.user,
            "channel": ch,
            "app_id": self.app_id,
            "guild_id": ch.get("guild_id"),
        }

    def _command_id(self, name: str, guild_id: str | None) -> tuple[str | None, str | None]:
        for c in self.guild_commands.get(guild_id or "", []):
            if c["name"] == name:
                return c["id"], guild_id
        for c in self.global_commands:
            if c["name"] == name:
                return c["id"], None
        return None, None

    def slash(
        self,
        name: str,
        subcommand: str | None = None,
        options: Mapping[str, Any] | None = None,
        *,
        user: JSON | None = None,
        channel: JSON | None = None,
        **kw: Any,
    ) -> JSON:
        """:func:`discord_payloads.slash` with this fake's defaults (alice in #general, the
        synced command's id, and ``command_guild_id`` if it was synced to the guild)."""
        ctx = self._ctx(user, channel)
        cmd_id, cmd_guild = self._command_id(name, ctx["guild_id"])
        kw.setdefault("command_id", cmd_id)
        kw.setdefault("command_guild_id", cmd_guild)
        return p.slash(name, subcommand, options, **ctx, **kw)

    def click(
        self,
        custom_id: str,
        message: JSON | None = None,
        *,
        user: JSON | None = None,
        channel: JSON | None = None,
        **kw: Any,
    ) -> JSON:
        """A button click. ``message`` defaults to the newest stored message carrying that
        ``custom_id`` (e.g. one the bot sent earlier, even from a previous client)."""
        clicker = (user or self.user)["id"]
        msg = message or self.find_message(custom_id, viewer=clicker)
        if msg is None:
            raise FakeDiscordError(f"no stored message has a component with custom_id {custom_id!r}")
        ctx = self._ctx(user, channel or self.channels.get(msg["channel_id"]))
        if not self._sees(clicker, msg):
            # Only the person an ephemeral message was shown to can see it, so only they can click.
            raise FakeDiscordError("an ephemeral message can only be clicked by the one who sees it")
        return p.click(custom_id, msg, **ctx, **kw)

    def submit_modal(
        self,
        custom_id: str,
        values: Mapping[str, str | Sequence[str]],
        *,
        user: JSON | None = None,
        channel: JSON | None = None,
        **kw: Any,
    ) -> JSON:
        return p.submit_modal(custom_id, values, **self._ctx(user, channel), **kw)

    async def interact(self, payload: JSON) -> InteractionRecord:
        """Register the interaction's id/token (the 3 s and 15 min clocks start now) and
        dispatch INTERACTION_CREATE."""
        rec = InteractionRecord(payload=payload, dispatched_at=self.now(), _fake=self)
        self.interactions[rec.id] = rec
        self._by_token[rec.token] = rec
        await self.dispatch("INTERACTION_CREATE", payload)
        return rec

    async def send_interaction(self, payload: Any) -> InteractionRecord | None:
        """Dispatch INTERACTION_CREATE with any ``d`` at all, as Discord never would (fuzzing). It is
        recorded like :meth:`interact` when its id and token are strings, so an answer is accepted."""
        rec = None
        if (
            isinstance(payload, dict)
            and isinstance(payload.get("id"), str)
            and isinstance(payload.get("token"), str)
        ):
            rec = InteractionRecord(payload=payload, dispatched_at=self.now(), _fake=self)
            self.interactions[rec.id] = rec
            self._by_token[rec.token] = rec
        await self.dispatch("INTERACTION_CREATE", payload)
        return rec

    async def send_raw(self, frame: Any) -> None:
        """Send ``frame`` as it is (a dict is JSON-encoded, a str sent verbatim) on every live
        connection: control frames with odd data, text that is not JSON (fuzzing)."""
        text = frame if isinstance(frame, str) else json.dumps(frame)
        for s in self._live_sessions():
            if s.ws is not None and not s.ws.closed:
                await s.ws.send_str(text)

    async def user_message(
        self, content: str, *, user: JSON | None = None, channel: JSON | None = None
    ) -> JSON:
        """A user posts in a channel → MESSAGE_CREATE, filtered as Discord does: only with
        GUILD_MESSAGES/DIRECT_MESSAGES intents, and ``content`` blanked without MESSAGE_CONTENT
        unless it is a DM or mentions the bot."""
        ch = channel or self.channel
        msg = p.message(
            channel_id=ch["id"], guild_id=ch.get("guild_id"), author=user or self.user, content=content
        )
        self.messages[msg["id"]] = msg
        await self._message_create_event(msg)
        return msg

    async def _message_create_event(self, msg: JSON) -> None:
        is_dm = "guild_id" not in msg
        for s in self._live_sessions():
            intents = int(s.identify.get("intents", 0))
            if not intents & (INTENT_DIRECT_MESSAGES if is_dm else INTENT_GUILD_MESSAGES):
                continue
            data = dict(msg)
            own = msg["author"]["id"] == self.bot_user["id"]
            mentioned = (
                f"<@{self.bot_user['id']}>" in msg["content"]
                or f"<@!{self.bot_user['id']}>" in msg["content"]
            )
            if not (intents & INTENT_MESSAGE_CONTENT or is_dm or own or mentioned):
                data.update(content="", embeds=[], attachments=[], components=[])
            if not is_dm:
                g = self.guilds[msg["guild_id"]]
                m = next((m for m in g["members"] if m["user"]["id"] == msg["author"]["id"]), None)
                if m is not None:
                    data["member"] = {k: v for k, v in m.items() if k != "user"}
            await self._dispatch_to(s, "MESSAGE_CREATE", data)

    # ------------------------------------------------------------------ REST (server)

    def _register_routes(self) -> None:
        table: list[tuple[str, str, Handler]] = [
            ("GET", "/users/@me", self._get_me),
            ("GET", "/oauth2/applications/@me", self._get_app),
            ("GET", "/applications/@me", self._get_app),
            ("GET", "/gateway", self._get_gateway),
            ("GET", "/gateway/bot", self._get_gateway),
            ("GET", "/applications/{app_id}/commands", self._get_commands),
            ("PUT", "/applications/{app_id}/commands", self._put_commands),
            ("GET", "/applications/{app_id}/guilds/{guild_id}/commands", self._get_commands),
            ("PUT", "/applications/{app_id}/guilds/{guild_id}/commands", self._put_commands),
            ("POST", "/interactions/{interaction_id}/{token}/callback", self._callback),
            ("POST", "/webhooks/{app_id}/{token}", self._followup),
            ("GET", "/webhooks/{app_id}/{token}/messages/{message_id}", self._webhook_message),
            ("PATCH", "/webhooks/{app_id}/{token}/messages/{message_id}", self._webhook_message),
            ("DELETE", "/webhooks/{app_id}/{token}/messages/{message_id}", self._webhook_message),
            ("GET", "/channels/{channel_id}", self._get_channel),
            ("POST", "/channels/{channel_id}/messages", self._create_message),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self._channel_message),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self._channel_message),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self._channel_message),
            ("POST", "/channels/{channel_id}/typing", self._typing),
            ("POST", "/users/@me/channels", self._create_dm),
        ]
        self._routes = [(m, t, _compile(t), h) for m, t, h in table]

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        call = RestCall(
            method=request.method,
            path=path,
            route="",
            query=dict(request.query),
            json=None,
            headers=dict(request.headers),
            at=self.now(),
        )
        if request.content_type == "multipart/form-data":
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    continue
                data = await part.read()
                if part.name == "payload_json":
                    call.json = json.loads(data)
                else:
                    call.files.append(
                        {
                            "name": part.name,
                            "filename": part.filename,
                            "content_type": part.headers.get("Content-Type"),
                            "size": len(data),
                            "data": data,
                        }
                    )
        elif request.can_read_body:
            raw = await request.read()
            call.json = json.loads(raw) if raw else None
        self.calls.append(call)
        try:
            resp = await self._route(call)
        finally:
            self._bump()
        call.status = resp.status
        return resp

    async def _route(self, call: RestCall) -> web.StreamResponse:
        params: dict[str, str] | None = None
        handler: Handler | None = None
        for method, template, rx, h in self._routes:
            m = rx.match(call.path)
            if m and method == call.method:
                call.route, params, handler = f"{method} {template}", m.groupdict(), h
                break
        if handler is None or params is None:
            self.unhandled.append(call)
            return self._answer(call, rules.error(0, "404: Not Found"), 404)
        for rule in self._fail_rules:
            if rule.times > 0 and self._matches(rule.route, call):
                rule.times -= 1
                return self._fail(call, rule)
        unauthenticated = call.path.startswith(("/interactions/", "/webhooks/"))
        if not unauthenticated and call.headers.get("Authorization") != f"Bot {self.token}":
            return self._answer(call, rules.error(0, "401: Unauthorized"), 401)
        return await handler(call, params)

    def _with_files(self, call: RestCall, body: JSON) -> JSON:
        """``body`` with ``attachments`` as Discord returns them, built from the multipart files
        (``files[n]`` matched to ``payload_json.attachments[].id == n``); bytes go to ``uploads``."""
        if not call.files:
            return body
        described = {str(a.get("id")): a for a in body.get("attachments") or [] if isinstance(a, dict)}
        out: list[JSON] = []
        for f in call.files:
            index = re.fullmatch(r"files\[(\d+)\]", str(f["name"]))
            meta = described.get(index.group(1), {}) if index else {}
            aid = p.snowflake()
            filename = str(meta.get("filename") or f["filename"])
            self.uploads[aid] = f["data"]
            out.append(
                {
                    "id": aid,
                    "filename": filename,
                    "size": f["size"],
                    "content_type": f["content_type"],
                    "url": f"{self.base_url}/attachments/{aid}/{filename}",
                    "proxy_url": f"{self.base_url}/attachments/{aid}/{filename}",
                    **({"description": meta["description"]} if meta.get("description") else {}),
                }
            )
        return {**body, "attachments": out}

    def _too_large(self, call: RestCall) -> web.Response | None:
        if sum(int(f["size"]) for f in call.files) > rules.MAX_UPLOAD:
            return self._answer(call, rules.error(rules.ENTITY_TOO_LARGE, "Request entity too large"), 413)
        return None

    def _answer(self, call: RestCall, body: Any, status: int = 200) -> web.Response:
        call.response = body
        if status == 204:
            return web.Response(status=204)
        return _json_response(body, status)

    def _fail(self, call: RestCall, rule: _FailRule) -> web.Response:
        if rule.status != 429:
            call.response = rules.error(0, f"{rule.status}: Server Error")
            return _json_response(call.response, rule.status)
        body = {
            "message": "You are being rate limited.",
            "retry_after": rule.retry_after,
            "global": rule.is_global,
        }
        headers = {
            "Retry-After": str(math.ceil(rule.retry_after)),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{time.time() + rule.retry_after:.3f}",
            "X-RateLimit-Reset-After": f"{rule.retry_after:.3f}",
            "X-RateLimit-Bucket": f"fake-{abs(hash(call.route)) % 10**8:08d}",
            "X-RateLimit-Scope": "global" if rule.is_global else "user",
            # discord.py treats a 429 without Via as a Cloudflare ban and gives up.
            "Via": "1.1 google",
        }
        if rule.is_global:
            headers["X-RateLimit-Global"] = "true"
        call.response = body
        return _json_response(body, 429, headers)

    def _invalid(self, call: RestCall, errs: list[rules.FieldError]) -> web.Response:
        return self._answer(call, rules.invalid_form_body(errs), 400)

    # -- identity

    async def _get_me(self, call: RestCall, _: dict[str, str]) -> web.StreamResponse:
        return self._answer(call, {**self.bot_user, "verified": True, "mfa_enabled": False, "email": None})

    async def _get_app(self, call: RestCall, _: dict[str, str]) -> web.StreamResponse:
        return self._answer(call, p.application(self.app_id, self.owner))

    async def _get_gateway(self, call: RestCall, _: dict[str, str]) -> web.StreamResponse:
        body: JSON = {"url": self.gateway_url.rstrip("/")}
        if call.path.endswith("/bot"):
            body.update(
                shards=1,
                session_start_limit={
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 86_400_000,
                    "max_concurrency": 1,
                },
            )
        return self._answer(call, body)

    # -- application commands

    async def _get_commands(self, call: RestCall, params: dict[str, str]) -> web.StreamResponse:
        gid = params.get("guild_id")
        return self._answer(call, self.guild_commands.get(gid, []) if gid else self.global_commands)

    async def _put_commands(self, call: RestCall, params: dict[str, str]) -> web.StreamResponse:
        if params["app_id"] != self.app_id:
            return self._answer(call, rules.error(0, "403: Forbidden"), 403)
        gid = params.get("guild_id")
        errs = []
        for i, cmd in enumerate(call.json or []):
            if not re.fullmatch(r"[-_\w]{1,32}", cmd.get("name", "")) or cmd["name"] != cmd["name"].lower():
                errs.append(rules.FieldError((i, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Invalid name"))
            if cmd.get("type", 1) == 1 and not 1 <= len(cmd.get("description", "")) <= 100:
                errs.append(
                    rules.FieldError(
                        (i, "description"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
                    )
                )
        if errs:
            return self._invalid(call, errs)
        old = {
            c["name"]: c["id"] for c in (self.guild_commands.get(gid, []) if gid else self.global_commands)
        }
        stored = []
        for cmd in call.json or []:
            full = {
                "id": old.get(cmd["name"]) or p.snowflake(),
                "application_id": self.app_id,
                "version": p.snowflake(),
                "type": 1,
                "default_member_permissions": None,
                "nsfw": False,
                "options": [],
                **cmd,
            }
            if gid:
                full["guild_id"] = gid
            stored.append(full)
        if gid:
            self.guild_commands[gid] = stored
        else:
            self.global_commands = stored
        return self._answer(call, stored)

    # -- interactions

    def _interaction_message(self, rec: InteractionRecord, data: JSON, *, id: str | None = None) -> JSON:
        ip = rec.payload
        # Discord knows who interacted whatever a (fuzzed) frame says; stand-ins keep the answer whole.
        member = ip.get("member")
        author = (member.get("user") if isinstance(member, dict) else None) or ip.get("user")
        author = author if isinstance(author, dict) else self.user
        channel_id, guild_id = ip.get("channel_id"), ip.get("guild_id")
        channel_id = channel_id if isinstance(channel_id, str) and channel_id in self.channels else None
        guild_id = guild_id if isinstance(guild_id, str) and guild_id in self.guilds else None
        return p.message(
            id=id,
            channel_id=channel_id or self.channel["id"],
            guild_id=guild_id,
            author=self.bot_user,
            content=data.get("content") or "",
            embeds=data.get("embeds") or [],
            components=data.get("components") or [],
            attachments=data.get("attachments") or [],
            flags=int(data.get("flags") or 0),
            type=20 if ip.get("type") == p.APPLICATION_COMMAND else 0,
            webhook_id=self.app_id,
            application_id=self.app_id,
            interaction_metadata={
                "id": rec.id,
                "type": ip.get("type"),
                "user": author,
                "authorizing_integration_owners": ip.get("authorizing_integration_owners") or {},
            },
        )

    async def _callback(self, call: RestCall, params: dict[str, str]) -> web.StreamResponse:
        rec = self.interactions.get(params["interaction_id"])
        if rec is None or rec.token != params["token"]:
            return self._answer(call, rules.error(rules.UNKNOWN_INTERACTION, "Unknown interaction"), 404)
        if rec.response is not None:
            return self._answer(
                call,
                rules.error(rules.ALREADY_ACKNOWLEDGED, "Interaction has already been acknowledged."),
                400,
            )
        if call.at - rec.dispatched_at > self.interaction_deadline:
            return self._answer(call, rules.error(rules.UNKNOWN_INTERACTION, "Unknown interaction"), 404)
        body = call.json or {}
        cb_type, data, itype = body.get("type"), body.get("data") or {}, rec.payload.get("type")
        allowed = {
            p.APPLICATION_COMMAND: {4, 5, 9},
            p.MESSAGE_COMPONENT: {4, 5, 6, 7, 9},
            p.MODAL_SUBMIT: {4, 5, 6, 7} if "message" in rec.payload else {4, 5},
            p.AUTOCOMPLETE: {8},
        }.get(itype, {1})
        if cb_type not in allowed:
            err = rules.FieldError(
                ("type",),
                "INTERACTION_RESPONSE_TYPE_INVALID",
                f"Invalid callback type for interaction type {itype}",
            )
            return self._invalid(call, [err])
        if cb_type in (4, 7):
            errs = rules.message_errors(data, ("data",))
            if errs:
                return self._invalid(call, errs)
            if cb_type == 4 and rules.is_empty_message(data, has_files=bool(call.files)):
                return self._answer(
                    call, rules.error(rules.EMPTY_MESSAGE, "Cannot send an empty message"), 400
                )
        if cb_type == 9:
            errs = rules.modal_errors(data)
            if errs:
                return self._invalid(call, errs)

        if (big := self._too_large(call)) is not None:
            return big
        rec.response = body
        message: JSON | None = None
        data = self._with_files(call, data)
        if cb_type == 4:
            message = self._interaction_message(rec, data)
        elif cb_type == 5:
            flags = p.FLAG_LOADING | (int(data.get("flags") or 0) & p.FLAG_EPHEMERAL)
            message = self._interaction_message(rec, {"flags": flags})
        elif cb_type == 7:
            # UPDATE_MESSAGE: the message clicked (for an ephemeral one, as only its user sees it)
            # is updated in place; it stays ephemeral whatever flags the update sends.
            message = self._edit(dict(self._clicked(rec)), data)
        elif cb_type == 6 and itype == p.MESSAGE_COMPONENT:
            # DEFERRED_UPDATE_MESSAGE: the clicked message is the original response, edited later
            # through PATCH .../messages/@original.
            rec.original = self._clicked(rec)
        if message is not None:
            rec.original = message
            self.messages[message["id"]] = message
        if call.query.get("with_response") not in ("1", "true", "True"):
            return self._answer(call, None, 204)
        result: JSON = {"interaction": {"id": rec.id, "type": itype}, "resource": {"type": cb_type}}
        if message is not None:
            result["interaction"].update(
                response_message_id=message["id"],
                response_message_loading=bool(message["flags"] & p.FLAG_LOADING),
                response_message_ephemeral=bool(message["flags"] & p.FLAG_EPHEMERAL),
            )
            result["resource"]["message"] = message
        return self._answer(call, result)

    def _clicked(self, rec: InteractionRecord) -> JSON:
        """The message a component interaction came from, as Discord knows it: the one stored, else the
        frame's. Discord always knows which message was clicked: a (fuzzed) frame whose message has no
        id or flags gets a stand-in, so the answer stays whole (as in `_interaction_message`)."""
        msg: Any = rec.payload.get("message")
        mid = msg.get("id") if isinstance(msg, dict) else None
        if isinstance(mid, str) and mid in self.messages:
            return self.messages[mid]
        if not isinstance(mid, str) or not isinstance(msg.get("flags"), int):
            msg = p.message(channel_id=str(self.channel["id"]), author=self.bot_user)
        clicked: JSON = self.messages.setdefault(msg["id"], msg)
        return clicked

    def _webhook_record(self, call: RestCall, params: dict[str, str]) -> InteractionRecord | web.Response:
        rec = self._by_token.get(params["token"])
        if rec is None or params["app_id"] != self.app_id:
            return self._answer(call, rules.error(rules.UNKNOWN_WEBHOOK, "Unknown Webhook"), 404)
        if call.at - rec.dispatched_at > self.token_ttl:
            return self._answer(call, rules.error(rules.INVALID_WEBHOOK_TOKEN, "Invalid Webhook Token"), 401)
        if rec.response is None:  # the webhook exists only once the interaction is acknowledged
            return self._answer(call, rules.error(rules.UNKNOWN_WEBHOOK, "Unknown Webhook"), 404)
        return rec

    async def _followup(self, call: RestCall, params: dict[str, str]) -> web.StreamResponse:
        rec = self._webhook_record(call, params)
        if not isinstance(rec, InteractionRecord):
            return rec
        body = call.json or {}
        errs = rules.message_errors(body)
        if errs:
            return self._invalid(call, errs)
        if rules.is_empty_message(body, has_files=bool(call.files)):
            return self._answer(call, rules.error(rules.EMPTY_MESSAGE, "Cannot send an empty message"), 400)
        if (big := self._too_large(call)) is not None:
            return big
        body = self._with_files(call, body)
        orig = rec.original
        if rec.callback_type == 5 and orig is not None and orig["flags"] & p.FLAG_LOADING:
            # Discord: the first follow-up after a deferred response replaces the "thinking"
            # message, keeping the defer's ephemerality.
            keep = orig["flags"] & p.FLAG_EPHEMERAL
            msg = self._edit(orig, {**body, "flags": keep})
        else:
            msg = self._interaction_message(rec, body)
        self.messages[msg["id"]] = msg
        rec.followups.append(msg)
        if call.query.get("wait") in ("1", "true", "True"):
            return self._answer(call, msg)
        return self._answer(call, None, 204)

    def _edit(self, msg: JSON, body: JSON) -> JSON:
        for key in ("content", "embeds", "components", "attachments"):
            if key in body:
                msg[key] = body[key] if body[key] is not None else ("" if key == "content" else [])
        if "flags" in body and body["flags"] is not None:
            msg["flags"] = int(body["flags"]) | (msg["flags"] & p.FLAG_EPHEMERAL)
        msg["flags"] &= ~p.FLAG_LOADING
        msg["edited_timestamp"] = p.iso_now()
        return msg

    async def _webhook_message(self, call: RestCall, params: dict[str, str]) -> web.StreamResponse:
        rec = self._webhook_record(call, params)
        if not isinstance(rec, InteractionRecord):
            return rec
        mid = params["message_id"]
        if mid == "@original":
            msg = rec.original
        else:
            msg = next((m for m in [rec.original, *rec.followups] if m is not None and m["id"] == mid), None)
        if msg is None:
            return self._answer(call, rules.error(rules.UNKNOWN_MESSAGE, "Unknown Message"), 404)
        if call.method == "GET":
            return self._answer(call, msg)
        if call.method == "DELETE":
            self.messages.pop(msg["id"], None)
            if msg is rec.original:
                rec.original = None
            return self._answer(call, None, 204)
        errs = rules.message_errors(call.json or {})
        if errs:
            return self._invalid(call, errs)
        if (big := self._too_large(call)) is not None:
            return big
        return self._answer(call, self._edit(msg, self._with_files(call, call.json or {})))

    # -- channels

    async def _get_channel(self, call: RestCall, params: dict[str, str]) -> web.StreamResponse:
        ch = self.channels.get(params["channel_id"])
        if ch is None:
            return self._answer(call, rules.error(rules.UNKNOWN_CHANNEL, "Unknown Channel"), 404)
        return self._answer(call, ch)

    async def _create_message(self, call: RestCall, params: dict[str, str]) -> web.StreamResponse:
        ch = self.channels.get(params["channel_id"])
        if ch is None:
            return self._answer(call, rules.error(rules.UNKNOWN_CHANNEL, "Unknown Channel"), 404)
        body = call.json or {}
        errs = rules.message_errors(body)
        if errs:
            return self._invalid(call, errs)
        if rules.is_empty_message(body, has_files=bool(call.files)):
            return self._answer(call, rules.error(rules.EMPTY_MESSAGE, "Cannot send an empty message"), 400)
        if (big := self._too_large(call)) is not None:
            return big
        nonce = body.get("nonce")
        if nonce is not None and len(str(nonce)) > rules.MAX_NONCE:
            err = rules.FieldError(("nonce",), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
            return self._invalid(call, [err])
        key = (self.bot_user["id"], str(nonce))
        seen = self._nonces.get(key) if nonce is not None and body.get("enforce_nonce") else None
        if seen is not None and call.at - seen[1] <= self.nonce_window:
            # Discord: "If another message was created by the same author with the same nonce, that
            # message will be returned and no new message will be created." One deleted since: 404.
            earlier = self.messages.get(seen[0])
            if earlier is None:
                return self._answer(call, rules.error(rules.UNKNOWN_MESSAGE, "Unknown Message"), 404)
            return self._answer(call, earlier)
        body = self._with_files(call, body)
        if ch["type"] == 1 and ch["recipients"][0]["id"] in self.dms_closed:
            return self._answer(
                call, rules.error(rules.CANNOT_DM_USER, "Cannot send messages to this user"), 403
            )
        msg = p.message(
            channel_id=ch["id"],
            guild_id=ch.get("guild_id"),
            author=self.bot_user,
            content=body.get("content") or "",
            embeds=body.get("embeds") or [],
            components=body.get("components") or [],
            attachments=body.get("attachments") or [],
            flags=int(body.get("flags") or 0),
        )
        if nonce is not None:
            msg["nonce"] = nonce
            self._nonces[key] = (msg["id"], call.at)
        self.messages[msg["id"]] = msg
        await self._message_create_event(msg)  # Discord echoes the bot's own messages
        return self._answer(call, msg)

    async def _channel_message(self, call: RestCall, params: dict[str, str]) -> web.StreamResponse:
        msg = self.messages.get(params["message_id"])
        # Ephemeral messages are not in the channel: only their interaction's webhook reaches them.
        if msg is None or msg["channel_id"] != params["channel_id"] or msg["flags"] & p.FLAG_EPHEMERAL:
            return self._answer(call, rules.error(rules.UNKNOWN_MESSAGE, "Unknown Message"), 404)
        if call.method == "GET":
            return self._answer(call, msg)
        if msg["author"]["id"] != self.bot_user["id"] and call.method == "PATCH":
            return self._answer(
                call,
                rules.error(
                    rules.CANNOT_EDIT_OTHERS_MESSAGE, "Cannot edit a message authored by another user"
                ),
                403,
            )
        if call.method == "DELETE":
            del self.messages[msg["id"]]
            return self._answer(call, None, 204)
        errs = rules.message_errors(call.json or {})
        if errs:
            return self._invalid(call, errs)
        if (big := self._too_large(call)) is not None:
            return big
        return self._answer(call, self._edit(msg, self._with_files(call, call.json or {})))

    async def _typing(self, call: RestCall, _: dict[str, str]) -> web.StreamResponse:
        return self._answer(call, None, 204)

    async def _create_dm(self, call: RestCall, _: dict[str, str]) -> web.StreamResponse:
        uid = str((call.json or {}).get("recipient_id"))
        recipient = self.users.get(uid)
        if recipient is None:
            err = rules.FieldError(("recipient_id",), "NUMBER_TYPE_COERCE", "Unknown user")
            return self._invalid(call, [err])
        cid = self._dm_by_user.get(uid)
        if cid is None:
            cid = self._dm_by_user[uid] = p.snowflake()
            self.channels[cid] = p.dm_channel(cid, recipient)
        return self._answer(call, self.channels[cid])
