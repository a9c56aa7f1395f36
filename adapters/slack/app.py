"""The slack-bolt AsyncApp in front of the core: `/convene`, ``cv:`` buttons and ``cv:`` modals.

Ack first, work after: slash commands and button clicks are acknowledged before the core runs (its
replies go through the outbox as ephemerals or channel posts). Modal submissions call the core
*before* the ack, because field errors travel inside the ack (``response_action: errors``); that
call is one short transaction.

Deliveries are handled once: Events API deliveries by ``event_id`` (Slack retries them), slash
commands and clicks by ``trigger_id`` (here), and every core command by its ``request_id`` (the
core's inbox), which is also what makes a modal submitted twice count once.
"""

from __future__ import annotations

import asyncio
import codecs
import contextvars
import datetime as dt
import functools
import hashlib
import hmac
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeGuard

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.context.async_context import AsyncBoltContext as _BoltContext
from slack_bolt.error import BoltUnhandledRequestError
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.internals import parse_body
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.faults import fault
from bot.config import SlackConfig
from bot.domain.commands import Audience, Context
from bot.domain.errors import DomainError
from bot.forms import Form, FormField
from bot.messages import Block, Card, Rendered
from bot.metrics import AckKind
from bot.ports import DeliveryError
from bot.prompts import PromptKey
from bot.refs import ConversationRef, Platform, UserRef
from bot.sanitize import display_name, storable
from bot.service.core import Convene, ServiceUnavailable
from bot.service.textcmd import run_text

from . import oauth
from .oauth_store import InstallationStore, Tokens
from .port import SlackChatPort, escape, literal_blocks, plain
from .shape import PayloadShape, acked_in_socket_mode, malformed

log = logging.getLogger("convene.slack")

COMMAND = "/convene"
# Payload types a log line may name (anything else is logged as "unknown": no payload text in logs).
KNOWN_TYPES = frozenset(
    {"block_actions", "view_submission", "view_closed", "shortcut", "message_action", "event_callback"}
)
ACTION_PATTERN = re.compile(r"^cv:")
MAX_MODAL_TITLE = 24
MAX_MODAL_BLOCKS = 100
MAX_LABEL = 2000
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_OPTIONS = 100
MAX_PLACEHOLDER = 150
MAX_INPUT = 3000
ACK_KINDS: dict[str, AckKind] = {
    "on_action": "click",
    "on_command": "command",
    "on_view": "form",
    "on_message": "event",
}
MAX_SIGNATURE_AGE = 300  # seconds; Slack's own rule (and slack_sdk's SignatureVerifier)
_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")  # used with fullmatch: no trailing newline slips through
# Delivery ids as Slack issues them; only these dedupe (two different payloads carrying the same odd
# value are not one delivery twice).
_TRIGGER = re.compile(r"[0-9]{1,20}\.[0-9]{1,20}(\.[0-9a-f]{1,64})?")
_EVENT_ID = re.compile(r"Ev[0-9A-Z]{1,32}")
_VIEW_ID = re.compile(r"V[0-9A-Z]{1,32}")
_URL = re.compile(r"https?://[^\s]{1,2000}")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_SIGNATURE = re.compile(r"^v0=[0-9a-f]{64}$")


class Malformed(Exception):
    """A payload without the fields Slack always sends; refused, never a traceback."""


# The workspace whose installation answers the request being handled (bolt's authorize result: the
# bot token's team in single-token mode, the installation found for the payload's team with OAuth).
_INSTALLED_TEAM: contextvars.ContextVar[str | None] = contextvars.ContextVar("installed_team", default=None)


# --- small helpers ------------------------------------------------------------------------------


class SeenIds:
    """Ids seen in the last ``ttl`` seconds (at most ``size``): in-process redelivery dedupe."""

    def __init__(
        self, ttl: float = 3600.0, size: int = 50_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def first_time(self, key: str) -> bool:
        now = self.clock()
        while self._seen and (
            len(self._seen) >= self.size or next(iter(self._seen.values())) < now - self.ttl
        ):
            self._seen.popitem(last=False)
        if key in self._seen:
            return False
        self._seen[key] = now
        return True


class ConvenerCheck:
    """Conveners named in config: user ids, or members of user groups (``usergroups.users.list``,
    cached for ``ttl`` seconds; a failed lookup counts as "not a member" and is retried next time).

    They are conveners in one workspace only: ``conveners.team_id``, else the workspace of the
    installation answering the request (single-token mode: the token's). A Slack user id means
    nothing in another workspace, so one that happens to equal a listed id there is nobody. With
    OAuth, the person who installed the app in a workspace is a convener there too."""

    def __init__(
        self, config: SlackConfig, client: AsyncWebClient, ttl: float = 300.0, tokens: Tokens | None = None
    ) -> None:
        self.team_id = config.conveners.team_id
        self.user_ids = frozenset(config.conveners.user_ids)
        self.groups = tuple(config.conveners.usergroup_ids)
        self.client = client
        self.tokens = tokens
        self.ttl = ttl
        self._members: dict[str, tuple[float, frozenset[str]]] = {}

    async def __call__(self, team: str, user_id: str, installed: str | None = None) -> bool:
        if installed is None or team != installed:
            return False  # a person of another workspace than the installation answering
        if isinstance(self.tokens, InstallationStore) and await self._installer(team) == user_id:
            return True  # OAuth mode: who installed the app convenes in their workspace
        if self.team_id is not None and team != self.team_id:
            return False
        if user_id in self.user_ids:
            return True
        for group in self.groups:
            if user_id in await self._group(team, group):
                return True
        return False

    async def _installer(self, team: str) -> str | None:
        assert isinstance(self.tokens, InstallationStore)
        try:
            found = await self.tokens.async_find_installation(enterprise_id=None, team_id=team)
        except Exception as err:
            log.warning("slack: the installation could not be read: %s", type(err).__name__)
            return None
        return found.user_id if found is not None else None

    async def _group(self, team: str, group: str) -> frozenset[str]:
        now = time.monotonic()
        cached = self._members.get(group)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            more: dict[str, Any] = {"token": await self.tokens.for_team(team)} if self.tokens else {}
            resp = await asyncio.wait_for(self.client.usergroups_users_list(usergroup=group, **more), 2.0)
            users = resp.get("users")
            members = (
                frozenset(u for u in users if isinstance(u, str)) if isinstance(users, list) else frozenset()
            )
        except Exception as err:
            log.warning("usergroups.users.list failed for a convener group: %s", type(err).__name__)
            return cached[1] if cached is not None else frozenset()
        self._members[group] = (now + self.ttl, members)
        return members


class AudienceCheck:
    """Whether a channel is shared with another organisation (Slack Connect): from the payload when
    Slack says so (Events API's ``is_ext_shared_channel``), else ``conversations.info`` (needs
    channels:read / groups:read), cached for ``ttl`` seconds per channel. A failed lookup is
    "unknown" and is not cached; the core refuses what needs to know."""

    def __init__(self, client: AsyncWebClient, ttl: float = 300.0, tokens: Tokens | None = None) -> None:
        self.client = client
        self.tokens = tokens
        self.ttl = ttl
        self._known: dict[str, tuple[float, Audience]] = {}

    def known(self, channel: str) -> Audience:
        cached = self._known.get(channel)
        return cached[1] if cached is not None and cached[0] > time.monotonic() else Audience.UNKNOWN

    def remember(self, channel: str, audience: Audience) -> Audience:
        if audience is not Audience.UNKNOWN:
            self._known[channel] = (time.monotonic() + self.ttl, audience)
        return audience

    async def __call__(self, channel: str, timeout: float = 2.0, *, team: str = "") -> Audience:
        known = self.known(channel)
        if known is not Audience.UNKNOWN or channel.startswith("D"):
            return known  # a DM takes no round; no im:read scope just to ask
        try:
            more: dict[str, Any] = {"token": await self.tokens.for_team(team)} if self.tokens else {}
            resp = await asyncio.wait_for(self.client.conversations_info(channel=channel, **more), timeout)
            info = resp.get("channel")
        except Exception as err:
            log.warning("conversations.info failed: %s", _reason(err))
            return Audience.UNKNOWN
        if not isinstance(info, dict):
            return Audience.UNKNOWN
        shared = info.get("is_ext_shared") or info.get("is_pending_ext_shared")
        return self.remember(channel, Audience.SHARED if shared else Audience.OWN)


# The same few names come with every click (a pure function: remembered per process, a bounded set).
_display_name = functools.lru_cache(maxsize=4096)(display_name)


def _str(value: Any) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise Malformed
    return value


def _delivery(value: Any, pattern: re.Pattern[str]) -> str | None:
    return value if isinstance(value, str) and pattern.fullmatch(value) else None


def _by_trigger(trigger: Any) -> str | None:
    """A slash command's or click's request id: Slack gives each a fresh trigger id."""
    return f"slack:{trigger}" if _delivery(trigger, _TRIGGER) else None


def _response_url(body: Mapping[str, Any]) -> str | None:
    """The payload's response_url, if it is one: it is stored with the private reply it carries."""
    url = body.get("response_url")
    if isinstance(url, str) and _URL.fullmatch(url) and storable(url):
        return url
    return None


def _dig(body: Mapping[str, Any], *path: str) -> Any:
    value: Any = body
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _team(body: Mapping[str, Any]) -> str:
    team = _dig(body, "team", "id") or body.get("team_id") or _dig(body, "user", "team_id")
    return _str(team)


# --- forms as modals ----------------------------------------------------------------------------


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": (plain(text)[:limit] or "·"), "emoji": True}


def _option(value: str, label: str) -> dict[str, Any]:
    return {"text": _plain(label, MAX_OPTION_TEXT), "value": value[:MAX_OPTION_VALUE]}


def _element(f: FormField, label: Callable[[str, str], str]) -> dict[str, Any]:
    el: dict[str, Any]
    if f.kind == "select" and f.options:
        options = [_option(o.value, o.label) for o in f.options[:MAX_OPTIONS]]
        el = {"type": "static_select", "options": options}
        initial = next((o for o in options if o["value"] == f.initial), None)
        if initial is not None:
            el["initial_option"] = initial
    elif f.kind == "bool":
        options = [_option(v, label("answers", v)) for v in ("yes", "no")]
        el = {"type": "static_select", "options": options}
        initial = next((o for o in options if o["value"] == f.initial.strip().lower()), None)
        if initial is not None:
            el["initial_option"] = initial
    elif f.kind == "date":
        el = {"type": "datepicker"}
        try:
            el["initial_date"] = dt.date.fromisoformat(f.initial).isoformat()
        except ValueError:
            pass
    else:
        el = {"type": "plain_text_input", "multiline": f.kind == "long"}
        if f.max_length:
            el["max_length"] = min(f.max_length, MAX_INPUT)
        if f.min_length and f.min_length <= el.get("max_length", MAX_INPUT):
            el["min_length"] = f.min_length
        if f.initial:
            el["initial_value"] = f.initial[: el.get("max_length", MAX_INPUT)]
    if f.placeholder and el["type"] in ("plain_text_input", "static_select", "datepicker"):
        el["placeholder"] = _plain(f.placeholder, MAX_PLACEHOLDER)
    el["action_id"] = f.name
    return el


def form_view(form: Form, channel_id: str, label: Callable[[str, str], str]) -> dict[str, Any]:
    """A neutral form as a Slack modal. ``callback_id`` is the form id; ``private_metadata``
    carries the channel so the submission knows its conversation. The intro may hold a round's
    title and purpose, which the core rendered into it: it is shown whole as literal rich text."""
    inputs = [
        {
            "type": "input",
            "block_id": f.name,
            "optional": not f.required,
            "label": _plain(f.label, MAX_LABEL),
            "element": _element(f, label),
        }
        for f in form.fields
    ]
    room = MAX_MODAL_BLOCKS - len(inputs)
    intro = literal_blocks(form.intro)[:room]
    return {
        "type": "modal",
        "callback_id": form.form_id,
        "title": _plain(form.title, MAX_MODAL_TITLE),
        "submit": _plain(form.submit, MAX_MODAL_TITLE),
        "private_metadata": json.dumps({"c": channel_id}),
        "blocks": [*intro, *inputs],
    }


def view_values(view: Mapping[str, Any]) -> dict[str, str]:
    """``{field: text}`` from a submitted view's state (empty string for an empty input)."""
    state = _dig(view, "state", "values")
    if not isinstance(state, Mapping):
        raise Malformed
    out: dict[str, str] = {}
    for block_id, actions in state.items():
        if not isinstance(actions, Mapping):
            raise Malformed
        for action in actions.values():
            if not isinstance(action, Mapping):
                raise Malformed
            kind = action.get("type")
            if kind in ("static_select", "radio_buttons"):
                value = _dig(action, "selected_option", "value")
            elif kind == "datepicker":
                value = action.get("selected_date")
            else:
                value = action.get("value")
            out[str(block_id)[:64]] = value if isinstance(value, str) else ""
    return out


def _input_block_ids(view: Mapping[str, Any]) -> list[str]:
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        return []
    return [
        b["block_id"]
        for b in blocks
        if isinstance(b, dict)
        and b.get("type") == "input"
        and isinstance(b.get("block_id"), str)
        and b["block_id"]
    ]


def _errors_for_view(errors: dict[str, str], view: Mapping[str, Any]) -> dict[str, str]:
    """Field errors keyed by the view's block ids (Slack rejects unknown ones)."""
    ids = _input_block_ids(view)
    known = {k: v for k, v in errors.items() if k in ids}
    if len(known) < len(errors) and ids:
        extra = " ".join(v for k, v in errors.items() if k not in ids)
        first = next((k for k in ids if k in known), ids[0])
        known[first] = f"{known.get(first, '')} {extra}".strip()
    return known


# --- the bolt app -------------------------------------------------------------------------------


@dataclass
class SlackHandlers:
    """What the listeners share; exposed for tests and the runner."""

    core: Convene
    config: SlackConfig
    client: AsyncWebClient
    conveners: ConvenerCheck
    seen: SeenIds
    audiences: AudienceCheck
    cards: SlackChatPort | None = None  # answers deck clicks through their response_url
    tokens: Tokens | None = None  # OAuth mode: each workspace's bot token; None: the client's
    busy: int = 0
    _idle: asyncio.Event | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def aclose(self) -> None:
        """Close the pooled HTTP session the cards go out on (at shutdown)."""
        if self.cards is not None:
            await self.cards.aclose()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run post-ack work in its own task (counted by `wait_idle`). The listener then returns, so
        bolt's request (the whole payload, often kilobytes of message blocks) is freed at ack time
        rather than kept alive until the core is done, which keeps a burst of clicks from filling the
        garbage collector's older generations (see benchmarks/slack_ack.py)."""
        self.enter()
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self.leave()

    def enter(self) -> None:
        self.busy += 1
        if self._idle is not None:
            self._idle.clear()

    def leave(self) -> None:
        self.busy -= 1
        if self.busy == 0 and self._idle is not None:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Until no listener is running (tests and shutdown: work continues after each ack)."""
        if self._idle is None:
            self._idle = asyncio.Event()
        if self.busy == 0:
            return
        self._idle.clear()
        await self._idle.wait()

    async def context(
        self,
        body: Mapping[str, Any],
        *,
        user_id: Any,
        user_name: Any,
        channel_id: Any,
        request_id: str | None,
        audience: Audience | None = None,
    ) -> Context:
        team = _team(body)
        user = _str(user_id)
        channel = _str(channel_id)
        name = user_name if isinstance(user_name, str) else ""
        return Context(
            actor=UserRef(Platform.SLACK, team, user, _display_name(name)),  # stored on actions taken
            where=ConversationRef(Platform.SLACK, team, channel),
            # Slash commands and clicks carry a response_url for private replies; modals and events do not.
            reply_handle=_response_url(body),
            request_id=request_id,
            is_convener=await self.conveners(team, user, _INSTALLED_TEAM.get()),
            audience=self.audiences.known(channel) if audience is None else audience,
        )

    async def open_form(self, ctx: Context, form: Form | None, trigger_id: Any) -> None:
        """Show ``form`` as a modal; when Slack will not open it (a trigger expired or unreadable),
        the person is told, never left with a click that did nothing."""
        if form is None:
            return
        if not isinstance(trigger_id, str) or not trigger_id:
            await self.say_privately(ctx, "form_not_opened")
            return
        view = form_view(form, ctx.where.channel_id, self.core.prompts.label)
        try:
            more: dict[str, Any] = (
                {"token": await self.tokens.for_team(ctx.where.workspace_id)} if self.tokens else {}
            )
            await self.client.views_open(trigger_id=trigger_id, view=view, **more)
        except Exception as err:
            log.warning("views.open failed: %s", _reason(err))
            await self.say_privately(ctx, "form_not_opened")

    async def show_card(self, ctx: Context, card: Card, *, on_ephemeral: bool) -> None:
        """A deck card through the click itself: the interaction's response_url replaces the card
        clicked (or adds one, for a click on a public post: a public message is never replaced).
        Without a usable response_url (none, expired, used up) it goes as a new ephemeral message."""
        if self.cards is None:
            self.cards = SlackChatPort(self.client, tokens=self.tokens)
        rendered = self.core.prompts.render_message(card.message, escape)
        if ctx.reply_handle:
            try:
                await self.cards.respond(ctx.reply_handle, rendered, replace=card.replace and on_ephemeral)
                return
            except DeliveryError as err:
                log.warning("a card could not go through its response_url: %s", err.reason)
        await self.cards.post_private(ctx.where, ctx.actor.user_id, rendered, None)

    async def guarded(self, ctx: Context | None, work: Callable[[], Awaitable[None]]) -> None:
        """Run core work after the ack; storage trouble and bugs become a private apology."""
        try:
            await work()
        except ServiceUnavailable:
            if ctx is not None:
                await self.say_privately(ctx, "service_unavailable")
        except Exception as err:
            log.error("slack request failed: %s", fault(err))
            if ctx is not None:
                await self.say_privately(ctx, "internal_error")

    async def refuse(self, ctx: Context, code: str) -> None:
        await self.guarded(ctx, lambda: self.core.refuse(ctx, DomainError(code)))

    def _error(self, code: str) -> Rendered:
        return Rendered((Block(self.core.prompts.render(PromptKey.ERROR, {"code": code}, escape)),))

    async def say_privately(self, ctx: Context, code: str) -> None:
        """An error told directly (not through the outbox, which may be what is failing)."""
        port = SlackChatPort(self.client, pool=False, tokens=self.tokens)  # a rare path: no session
        try:
            await port.post_private(ctx.where, ctx.actor.user_id, self._error(code), ctx.reply_handle)
        except Exception as err:
            log.warning("could not tell a person about an error: %s", _reason(err))

    async def tell(self, body: Mapping[str, Any], code: str) -> None:
        """Tell the sender of a payload whose ids could not be read (no `Context`), where Slack gives a
        way: the payload's ``response_url``, else an ephemeral to its channel and user if those read."""
        port = SlackChatPort(self.client, pool=False, tokens=self.tokens)
        url = _response_url(body)
        channel = (
            _dig(body, "channel", "id") or _dig(body, "container", "channel_id") or body.get("channel_id")
        )
        user = _dig(body, "user", "id") or body.get("user_id")
        try:
            if url is not None:
                await port.respond(url, self._error(code))
            elif _readable_id(channel) and _readable_id(user):
                team = _dig(body, "team", "id") or body.get("team_id")
                where = ConversationRef(Platform.SLACK, team if _readable_id(team) else "", channel)
                await port.post_private(where, user, self._error(code), None)
            else:
                log.info("refused a Slack payload whose sender cannot be reached")
        except Exception as err:
            log.warning("could not tell a person about an error: %s", _reason(err))

    def refused(self, body: Mapping[str, Any], why: str, status: int = 400) -> BoltResponse:
        """The answer to a payload that cannot be read (`PayloadShape`, `web_app`): logged by what was
        wrong (field names only); a form that can show an error keeps it on screen with what was
        typed, anything else is a 400 and its sender is told where Slack gives a way."""
        log.info("refused a signed Slack payload: %s", why)
        view = body.get("view")
        ids = (
            _input_block_ids(view)
            if body.get("type") == "view_submission" and isinstance(view, Mapping)
            else []
        )
        if ids:
            errors = {ids[0]: self.error_text("form_unreadable")}
            return BoltResponse(status=200, body={"response_action": "errors", "errors": errors})
        self.spawn(self.tell(body, "malformed_request"))
        return malformed(status)

    def error_text(self, code: str) -> str:
        return plain(self.core.prompts.render(PromptKey.ERROR, {"code": code}))


def _readable_id(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def _reason(err: Exception) -> str:
    data = getattr(getattr(err, "response", None), "data", None)
    code = data.get("error") if isinstance(data, dict) else None
    return str(code or type(err).__name__)


def _is_direct(channel_id: Any, channel_name: Any) -> bool:
    return (isinstance(channel_id, str) and channel_id.startswith("D")) or (
        isinstance(channel_name, str)
        and (channel_name == "directmessage" or channel_name.startswith("mpdm-"))
    )


def create_bolt_app(
    core: Convene,
    config: SlackConfig,
    *,
    client: AsyncWebClient,
    signing_secret: str | None = None,
    installations: InstallationStore | None = None,
    env: Mapping[str, str] | None = None,
    engine: AsyncEngine | None = None,
) -> AsyncApp:
    """The bolt app. ``client`` carries the bot token and ``base_url=config.api_base_url`` (bolt's
    lazy ``auth.test`` goes there too). Without a signing secret (Socket Mode) request
    verification is off; HTTP mode also verifies in front of bolt (`web_app`).

    With ``installations`` (``slack.oauth``; ``env`` holds its client id and secret, ``engine`` the
    database of its OAuth states), ``client`` carries no token: each request is authorized by its
    workspace's installation, and each call goes out with that workspace's token (`oauth`)."""
    tokens: Tokens | None = installations
    h = SlackHandlers(
        core,
        config,
        client,
        ConvenerCheck(config, client, tokens=tokens),
        SeenIds(),
        AudienceCheck(client, tokens=tokens),
        tokens=tokens,
    )
    settings = (
        oauth.oauth_settings(config, env or {}, installations, engine or installations.engine)
        if installations is not None
        else None
    )
    bolt = AsyncApp(
        # Named, or bolt reads the caller's source files (inspect.stack; ~0.5 MiB kept in linecache).
        # Bolt configures a logger of this name: never "convene" itself, whose levels are ours.
        name="convene-slack",
        client=client,
        oauth_settings=settings,
        authorize=oauth.authorize(settings, client) if settings is not None else None,  # type: ignore[arg-type]
        signing_secret=signing_secret or "",
        request_verification_enabled=signing_secret is not None,
        process_before_response=False,
        logger=logging.getLogger("convene.slack.bolt"),
        before_authorize=PayloadShape(h.refused),  # before anything in bolt reads the body
        raise_error_for_unhandled_request=True,  # to `on_error`, instead of a warning quoting the payload
    )
    bolt.convene_handlers = h  # type: ignore[attr-defined]

    bolt.use(Dedupe(h.seen))

    @bolt.error
    async def on_error(error: Exception, body: dict[str, Any], request: AsyncBoltRequest) -> BoltResponse:
        """What no listener took, or what failed in one: logged without the payload (bolt's own
        handler logs a traceback, and its unhandled-request warning quotes the body); the sender is
        told where Slack gives a way. Never a 500."""
        if isinstance(error, BoltUnhandledRequestError):
            kind = body.get("type")
            kind = kind if isinstance(kind, str) and kind in KNOWN_TYPES else "unknown"
            return acked_in_socket_mode(
                request, h.refused(body, f"no listener takes this {kind} payload", 404)
            )
        log.error("slack request failed: %s", fault(error))
        h.spawn(h.tell(body, "internal_error"))
        return acked_in_socket_mode(request, malformed())

    def tracked(fn: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        kind = ACK_KINDS[fn.__name__]

        async def run(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
            result = context.authorize_result
            _INSTALLED_TEAM.set(result.team_id if result is not None else None)
            h.enter()
            try:
                await fn(ack, body)  # every listener acknowledges first
                core.metrics.ack("slack", kind)
            finally:
                h.leave()

        return run

    # Button clicks first: bolt tries listeners in registration order, and each matcher it tries
    # costs a kwargs build; clicks (votes) are the hot path.
    @bolt.action(ACTION_PATTERN)
    @tracked
    async def on_action(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        action_id, trigger = body["actions"][0]["action_id"], body.get("trigger_id")  # PayloadShape
        ephemeral = _dig(body, "container", "is_ephemeral") is True
        try:
            ctx = await h.context(
                body,
                user_id=_dig(body, "user", "id"),
                user_name=_dig(body, "user", "username") or _dig(body, "user", "name"),
                channel_id=_action_channel(body),
                request_id=_by_trigger(trigger),
            )
        except Malformed:
            h.spawn(h.tell(body, "malformed_request"))
            return
        if not storable(action_id):
            await h.refuse(ctx, "malformed_request")
            return

        async def work() -> None:
            answer = await core.press(ctx, action_id)
            if isinstance(answer, Card):
                await h.show_card(ctx, answer, on_ephemeral=ephemeral)
            else:
                await h.open_form(ctx, answer, trigger)

        h.spawn(h.guarded(ctx, work))

    @bolt.command(COMMAND)
    @tracked
    async def on_command(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        channel_id, text, trigger = body.get("channel_id"), body.get("text"), body.get("trigger_id")
        try:
            ctx = await h.context(
                body,
                user_id=body.get("user_id"),
                user_name=body.get("user_name"),
                channel_id=channel_id,
                request_id=_by_trigger(trigger),
            )
        except Malformed:
            h.spawn(h.tell(body, "malformed_request"))
            return
        if not isinstance(text, str) or not storable(text):
            await h.refuse(ctx, "malformed_request")
            return
        if _is_direct(channel_id, body.get("channel_name")) and text.strip().lower() not in ("", "help"):
            await h.refuse(ctx, "direct_message")
            return

        line = text[:4000]

        async def work() -> None:
            here = replace(ctx, audience=await h.audiences(ctx.where.channel_id, team=ctx.where.workspace_id))
            form = await run_text(core, here, line)
            await h.open_form(here, form, trigger)

        h.spawn(h.guarded(ctx, work))

    @bolt.view(ACTION_PATTERN)
    @tracked
    async def on_view(ack: AsyncAck, body: dict[str, Any]) -> None:
        view = body["view"]  # an object with a string callback_id (PayloadShape)
        ids = _input_block_ids(view)
        ctx: Context | None = None

        async def keep_open(code: str) -> None:
            """The error on the form itself, which stays open with what was typed; a form without
            inputs (none of ours) is closed and the sender told."""
            if ids:
                await ack(response_action="errors", errors={ids[0]: h.error_text(code)})
                return
            await ack()
            await (h.say_privately(ctx, code) if ctx is not None else h.tell(body, code))

        try:
            view_id = _delivery(view.get("id"), _VIEW_ID)
            if view_id is None:
                raise Malformed
            ctx = await h.context(
                body,
                user_id=_dig(body, "user", "id"),
                user_name=_dig(body, "user", "username") or _dig(body, "user", "name"),
                channel_id=_metadata_channel(view),
                request_id=f"slack:view:{view_id}",
            )
            values = view_values(view)
        except Malformed:
            await keep_open("form_unreadable")
            return
        # Before the ack, so briefly: the command that opened the form has usually cached it.
        ctx = replace(
            ctx, audience=await h.audiences(ctx.where.channel_id, timeout=1.0, team=ctx.where.workspace_id)
        )
        try:
            errors = await core.submit_form(ctx, view["callback_id"], values, inline_errors=True)
        except ServiceUnavailable:
            await keep_open("service_unavailable")
            return
        except Exception as err:
            log.error("slack view submission failed: %s", fault(err))
            await keep_open("internal_error")
            return
        shown = _errors_for_view(errors, view) if errors else {}
        if shown:
            await ack(response_action="errors", errors=shown)
        else:
            await ack()

    @bolt.event("message")
    @tracked
    async def on_message(ack: AsyncAck, body: dict[str, Any]) -> None:
        """Ideas are never taken from DMs (workspace exports); say so, privately."""
        await ack()
        event = body["event"]  # an object (PayloadShape)
        if event.get("channel_type") not in ("im", "mpim") or event.get("bot_id") or event.get("subtype"):
            return
        try:
            ctx = await h.context(
                body,
                user_id=event.get("user"),
                user_name="",
                channel_id=event.get("channel"),
                request_id=f"slack:{event_id}"
                if (event_id := _delivery(body.get("event_id"), _EVENT_ID))
                else None,
                audience=_flagged(body.get("is_ext_shared_channel")),
            )
        except Malformed:
            log.info("refused a Slack message event whose ids cannot be read")
            return
        await h.refuse(ctx, "direct_message")

    if installations is not None:  # last: bolt tries listeners in order, and clicks come first
        oauth.register_uninstall(bolt, installations)
    return bolt


def _flagged(ext_shared: Any) -> Audience | None:
    """The Events API's own word on a channel, when it gives one."""
    if isinstance(ext_shared, bool):
        return Audience.SHARED if ext_shared else Audience.OWN
    return None


def _action_channel(body: Mapping[str, Any]) -> str:
    """A click's channel: the message's, else (a button inside one of our modals; none today) the
    one the modal's metadata carries. Raises Malformed when neither can be read."""
    channel = _dig(body, "channel", "id") or _dig(body, "container", "channel_id")
    return _str(channel) if channel is not None else _metadata_channel(body.get("view"))


def _metadata_channel(view: Any) -> str:
    raw = _dig(view, "private_metadata") if isinstance(view, Mapping) else None
    try:
        data = json.loads(raw) if isinstance(raw, str) else None
    except (ValueError, RecursionError):  # not what form_view wrote
        raise Malformed from None
    return _str(data.get("c") if isinstance(data, dict) else None)


# --- HTTP mode ----------------------------------------------------------------------------------


def _parse_loosely(body: bytes, headers: Mapping[str, Any]) -> Any:
    """The payload of a request bolt could not take, to find a way back to its sender; None if it
    cannot be read at all."""
    try:
        return parse_body(body.decode("utf-8"), headers.get("content-type"))
    except Exception:
        return None


FORM = "application/x-www-form-urlencoded"


def interactive_payload(body: bytes) -> dict[str, Any] | None:
    """The JSON object of an interactivity body (``payload=<url-encoded JSON>``, what every click
    sends), decoded at C speed; None for anything else, which bolt's own parser reads.

    The same result as bolt's ``parse_qsl`` + ``json.loads``, without urllib's pure-Python unquote
    (about 0.15 ms for a click carrying a card of blocks, each ``{``, ``"`` and ``:`` a ``%XX``):
    ``+`` is a space, and each ``%XX`` becomes its byte by turning it into a ``\\xXX`` escape (the
    body's own backslashes doubled first, so nothing else is an escape); a ``%`` without two hex digits
    after it, which urllib would keep as typed, is left to bolt."""
    if not body.startswith(b"payload=") or b"&" in body:
        return None
    value = body[8:].replace(b"+", b" ")
    try:
        if b"%" in value:
            value = codecs.escape_decode(value.replace(b"\\", b"\\\\").replace(b"%", b"\\x"))[0]
        payload = json.loads(value.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return None
    return payload if isinstance(payload, dict) else None


class ParsedRequest(AsyncBoltRequest):
    """An HTTP-mode bolt request whose body was parsed here (`interactive_payload`): bolt keeps the
    raw text (its own signature check reads it) and is handed the payload, instead of parsing it
    again with urllib."""

    def __init__(self, *, raw: str, payload: dict[str, Any], query: str, headers: dict[str, Any]) -> None:
        super().__init__(body="", query=query, headers=headers)
        self.raw_body = raw
        self.body = payload
        self.context = build_async_context(_BoltContext({}), payload)


def signature_ok(secret: str, body: bytes, timestamp: str | None, signature: str | None, now: float) -> bool:
    """Slack's v0 signature, checked defensively: any odd header is a plain ``False``."""
    if not timestamp or not signature or not _TIMESTAMP.match(timestamp) or not _SIGNATURE.match(signature):
        return False
    if abs(now - int(timestamp)) > MAX_SIGNATURE_AGE:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


class Dedupe(AsyncMiddleware):
    """A delivery Slack sent again (an event id, a click's or command's trigger id, seen before) is
    answered 200 with "no retry" and goes no further. A class, not ``@app.middleware``: bolt calls a
    function middleware through its keyword-injection builder, a cost on every request."""

    def __init__(self, seen: SeenIds) -> None:
        self.seen = seen

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse:
        body = req.body
        key: str | None = None
        if body.get("type") == "event_callback" and (event_id := _delivery(body.get("event_id"), _EVENT_ID)):
            key = "ev:" + event_id
        elif body.get("type") != "view_submission" and (
            trigger := _delivery(body.get("trigger_id"), _TRIGGER)
        ):
            key = "tr:" + trigger  # slash commands and clicks
        if key is not None and not self.seen.first_time(key):
            return BoltResponse(status=200, body="", headers={"X-Slack-No-Retry": "1"})
        return await next()


def web_app(
    bolt: AsyncApp,
    signing_secret: str,
    path: str = "/slack/events",
    *,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """The HTTP-mode endpoint. Signatures are verified here, before bolt sees anything (so an odd
    timestamp cannot reach bolt's parser, and no request body is ever logged); bolt verifies again."""
    if not signing_secret:
        raise ValueError("HTTP mode needs a signing secret")

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if not signature_ok(
            signing_secret,
            body,
            request.headers.get("X-Slack-Request-Timestamp"),
            request.headers.get("X-Slack-Signature"),
            clock(),
        ):
            log.info("rejected a Slack request with a bad or stale signature")
            return web.json_response({"error": "invalid request"}, status=401)
        headers: dict[str, str | Sequence[str]] = {k.lower(): v for k, v in request.headers.items()}
        try:
            text = body.decode("utf-8")
            payload = interactive_payload(body) if request.content_type == FORM else None
            bolt_req = (
                ParsedRequest(raw=text, payload=payload, query=request.query_string, headers=headers)
                if payload is not None
                else AsyncBoltRequest(body=text, query=request.query_string, headers=headers)
            )
        except Exception as err:
            # Whatever reading it raises is the request's doing: not UTF-8 or JSON, nested deeper
            # than the parser recurses (RecursionError), ids of a kind bolt's extractors cannot take.
            loose = _parse_loosely(body, headers)
            why = f"bolt could not read it ({fault(err)})"
            return await to_aiohttp_response(h.refused(loose if isinstance(loose, Mapping) else {}, why))
        try:
            bolt_resp = await bolt.async_dispatch(bolt_req)
        except Exception as err:  # never a 500 with a traceback for what a request holds
            log.error("slack request dispatch failed: %s", fault(err))
            bolt_resp = malformed()
        return await to_aiohttp_response(bolt_resp)

    h: SlackHandlers = bolt.convene_handlers  # type: ignore[attr-defined]

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post(path, handle)
    oauth.add_routes(app, bolt, h.config)
    return app
