"""Seeded fuzzing of both adapters, counted as issue 12's figure asks.

Hostile inputs go through the real code paths: signed HTTP requests into the slack-bolt app (as in
``tests/adapters/slack/rig.py``), and gateway frames from the fake Discord into the real discord.py
client (``tests/adapters/discord/rig.py``), run under the same supervisor as ``convene run``. Each
input starts from a payload the platform really sends (a slash command, a click, a form submit, a
DM) inside a round in its vote phase, then has one to three mutations: a key dropped, a value
replaced by something hostile (null, numbers, lone surrogates, NUL, 10,000 characters, mentions,
nesting), a string spiked, a value wrapped. Some inputs are whole bodies bolt cannot parse (100,000
``[``), some carry a bad signature, and on Discord some are frames Discord never sends: other events
with junk, INTERACTION_CREATE with no object at all.

What is counted (`Tally`):
* HTTP 5xx from the Slack endpoint; every tampered signature must be a 401;
* tracebacks: log records carrying exception info or the word, and "Traceback" on stderr;
* crashes: the Slack endpoint not answering, the Discord client ending (a supervised restart), an
  exception no one retrieved;
* answers: an input is *answerable* when the platform gives a way back to its sender that survived
  the mutation (Slack: the response_url it was issued, or a form with inputs, whose errors show
  inside it; Discord: the interaction's id and token, for a command, click or form). Each must have
  been answered: a reply on that response_url, an ephemeral to that sender, a modal opened with
  that trigger, errors inside the form (Slack); an accepted first response, and after a deferral a
  follow-up (Discord).

The same seed gives the same inputs. ``tests/adapters/test_fuzz.py`` runs a CI-sized share and
``benchmarks/fuzz_faults.py`` the full 10,000.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import io
import json
import logging
import os
import random
import time
import traceback
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlparse

from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.discord.runner import run_discord
from adapters.faults import Backoff, supervise
from tests.platform_fakes.slack import FakeSlackWebAPI, SlackInbound, signed_headers

Json = dict[str, Any]

# --- what is counted ----------------------------------------------------------------------------


@dataclass
class Tally:
    platform: str
    inputs: int = 0
    http_5xx: int = 0
    tracebacks: int = 0
    errors: int = 0  # ERROR lines from the adapters: a bug answered with internal_error
    crashes: int = 0
    signature_refusals: int = 0  # inputs sent with a bad signature
    signature_401: int = 0  # of those, answered 401
    answerable: int = 0
    answered: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    unanswered: list[str] = field(default_factory=list)  # what each unanswered input was (labels)
    traceback_lines: list[str] = field(default_factory=list)
    error_lines: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def merge(self, other: Tally) -> Tally:
        out = Tally(f"{self.platform}+{other.platform}")
        for name in (
            "inputs",
            "http_5xx",
            "tracebacks",
            "errors",
            "crashes",
            "signature_refusals",
            "signature_401",
            "answerable",
            "answered",
            "seconds",
        ):
            setattr(out, name, getattr(self, name) + getattr(other, name))
        out.statuses = self.statuses + other.statuses
        out.kinds = self.kinds + other.kinds
        out.unanswered = self.unanswered + other.unanswered
        out.traceback_lines = self.traceback_lines + other.traceback_lines
        out.error_lines = self.error_lines + other.error_lines
        return out

    def lines(self) -> list[str]:
        return [
            f"{self.platform}: {self.inputs} inputs in {self.seconds:.1f} s",
            f"  HTTP 5xx: {self.http_5xx}",
            f"  tracebacks: {self.tracebacks}",
            f"  errors logged by the adapters: {self.errors}",
            f"  crashes: {self.crashes}",
            f"  signature refusals: {self.signature_401} of {self.signature_refusals} were 401",
            f"  answered privately: {self.answered} of {self.answerable} answerable inputs",
            f"  statuses: {dict(sorted(self.statuses.items()))}" if self.statuses else "  statuses: -",
        ]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.tracebacks: list[str] = []
        self.errors: list[str] = []  # the adapters' own ERROR lines (a failure answered "internal_error")

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not format is still a record
            message = str(record.msg)
        if record.levelno >= logging.ERROR and record.name.startswith("convene"):
            self.errors.append(f"{record.name}: {message}")
        if record.exc_info or "Traceback" in message:
            trace = "".join(traceback.format_exception(*record.exc_info)) if record.exc_info else ""
            self.tracebacks.append(f"{record.name}: {message}\n{trace}")


@contextlib.contextmanager
def watching(tally: Tally) -> Iterator[None]:
    """Count tracebacks in every log record (any logger, any level) and on stderr, and exceptions
    nobody retrieved (the event loop's exception handler), while the block runs."""
    handler = _Records()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)  # INFO: what an operator runs with; tracebacks come at any level
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    unhandled: list[str] = []

    def on_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        unhandled.append(str(context.get("message")))
        loop.default_exception_handler(context)

    loop.set_exception_handler(on_loop_error)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            yield
    finally:
        loop.set_exception_handler(previous)
        root.removeHandler(handler)
        root.setLevel(level)
        stderr_tracebacks = err.getvalue().count("Traceback")
        tally.tracebacks += len(handler.tracebacks) + stderr_tracebacks
        tally.traceback_lines += handler.tracebacks[:20] + (
            [err.getvalue()[-4000:]] if stderr_tracebacks else []
        )
        tally.crashes += len(unhandled)
        tally.errors += len(handler.errors)
        tally.error_lines += handler.errors[:20]


# --- mutations ----------------------------------------------------------------------------------


def _nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for n in range(depth):
        value = [value] if n % 2 else {"a": value}
    return value


# Values no platform sends where a payload has a string, an id or an object.
HOSTILE: list[Callable[[random.Random], Any]] = [
    lambda r: None,
    lambda r: True,
    lambda r: 0,
    lambda r: -1,
    lambda r: 2**64,
    lambda r: 1.5e308,
    lambda r: "",
    lambda r: " ",
    lambda r: "x" * 10_000,
    lambda r: "\ud800",
    lambda r: "ab\udfffcd",
    lambda r: "a\x00b",
    lambda r: "<!channel> <@U0ALICE> @everyone <@&1>",
    lambda r: "🙂\u202e\u200b",
    lambda r: "cv:!!:x",
    lambda r: "cv:" + "a" * 90 + ":v:1:a",
    lambda r: "../../api/v10",
    lambda r: "{",
    lambda r: "null",
    lambda r: "9" * 25,
    lambda r: [],
    lambda r: {},
    lambda r: [None],
    lambda r: [{}],
    lambda r: {"id": None},
    lambda r: _nested(r.randint(3, 40)),
    lambda r: _nested(r.randint(100, 400)),
]
SPIKES = ["\ud800", "\x00", "\n", "\u202e", "<!here>", "%", "\\", '"', "'", " ", "é"]


def _paths(payload: Any, limit: int = 6) -> list[tuple[Any, Any]]:
    """Every (container, key) in ``payload`` down to ``limit`` levels, shallow ones first."""
    out: list[tuple[Any, Any]] = []
    level: list[tuple[Any, int]] = [(payload, 0)]
    while level:
        node, depth = level.pop(0)
        if depth >= limit:
            continue
        items = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        for key, value in items:
            out.append((node, key))
            if isinstance(value, dict | list) and len(out) < 400:
                level.append((value, depth + 1))
    return out


class Mutator:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def mutate(self, payload: Any, focus: tuple[str, ...] = ()) -> tuple[Any, list[str]]:
        """A mutated deep copy and what was done. ``focus``: top-level keys chosen more often."""
        payload = copy.deepcopy(payload)
        done: list[str] = []
        for _ in range(self.rng.choices((1, 2, 3), (60, 25, 15))[0]):
            paths = _paths(payload)
            if not paths:
                break
            top = [(c, k) for c, k in paths if c is payload and k in focus]
            container, key = self.rng.choice(top if top and self.rng.random() < 0.4 else paths)
            op = self.rng.choices(("drop", "replace", "spike", "wrap"), (25, 50, 15, 10))[0]
            old = container[key]
            if op == "drop":
                del container[key]
            elif op == "replace":
                container[key] = self.rng.choice(HOSTILE)(self.rng)
            elif op == "spike" and isinstance(old, str):
                at = self.rng.randint(0, len(old))
                container[key] = old[:at] + self.rng.choice(SPIKES) + old[at:]
            else:
                container[key] = [old] if self.rng.random() < 0.5 else {"value": old}
                op = "wrap"
            done.append(f"{op} {key!r}"[:60])
        return payload, done


# --- Slack --------------------------------------------------------------------------------------

SLACK_TEXTS = ["help", "status", "mine", "join", "contribute", "next", "goal 1", "link ABC123", "frob", ""]
# Whole bodies bolt cannot read, or reads as something else entirely.
SLACK_WIRE: list[tuple[str, bytes, str]] = [
    ("100,000 [", b"[" * 100_000 + b"]" * 100_000, "application/json"),
    ("payload=100,000 [", b"payload=" + b"%5B" * 100_000, "application/x-www-form-urlencoded"),
    ("not JSON", b"{nope", "application/json"),
    ("not UTF-8", b"\xff\xfe\x00{", "application/json"),
    ("empty", b"", "application/json"),
    ("JSON list", b"[1, 2]", "application/json"),
    ("JSON string", b'"block_actions"', "application/json"),
    ("payload=null", b"payload=null", "application/x-www-form-urlencoded"),
    ("payload=[]", b"payload=%5B%5D", "application/x-www-form-urlencoded"),
    ("NaN", b'{"type": NaN}', "application/json"),
    ("over 1 MiB", b'{"type": "' + b"x" * (1024 * 1024 + 10) + b'"}', "application/json"),
]


@dataclass
class SlackCase:
    label: str
    body: bytes
    headers: dict[str, str]
    tampered: bool = False
    response_path: str | None = None  # the issued response_url that survived the mutation
    form: bool = False  # a form submission whose view still has input blocks
    users: tuple[Any, ...] = ()  # the sender's id as built, and as mutated
    trigger: str | None = None
    sent: list[Any] = field(default_factory=list)  # what the app sent while handling it


class SlackInputs:
    """Builds the n-th input: a real payload of some kind, then mutations (or a wire-level body,
    or a bad signature)."""

    def __init__(
        self, fake: FakeSlackWebAPI, rng: random.Random, buttons: list[str], views: list[Json]
    ) -> None:
        self.fake = fake
        self.rng = rng
        self.mutator = Mutator(rng)
        self.buttons = buttons or ["cv:x:v:1:a"]
        self.views = views

    def base(self, n: int) -> tuple[str, SlackInbound, str]:
        user = f"U0FZ{n:06d}"
        p = self.fake.payloads
        kind = self.rng.choices(("slash", "click", "form", "dm", "modal_click"), (30, 35, 20, 10, 5))[0]
        if kind == "slash":
            text = self.rng.choice(SLACK_TEXTS)
            return kind, p.slash_command(text=text, user_id=user, user_name=f"fz{n}"), user
        if kind == "click":
            action = self.rng.choice([*self.buttons, "cv:zz:nonsense", "not-ours"])
            return kind, p.block_actions(action, action, user_id=user, user_name=f"fz{n}"), user
        if kind == "form" and self.views:
            view = self.rng.choice(self.views)
            values = {
                b["block_id"]: {b["element"]["action_id"]: self._value(b["element"])}
                for b in view["blocks"]
                if b["type"] == "input"
            }
            sub = p.view_submission(
                view["callback_id"],
                values,
                private_metadata=view["private_metadata"],
                user_id=user,
                user_name=f"fz{n}",
                blocks=view["blocks"],
            )
            return "form", sub, user
        if kind == "modal_click":
            view = {"callback_id": "cv:x:form:goal", "private_metadata": json.dumps({"c": "C0GENERAL"})}
            return kind, p.block_actions(self.rng.choice(self.buttons), "x", view=view, user_id=user), user
        dm = p.message_event("an idea by DM", user_id=user, channel_id=f"D0FZ{n:06d}", channel_type="im")
        return "dm", dm, user

    def _value(self, element: Json) -> Any:
        if element["type"] == "static_select":
            options = element.get("options") or [{"value": "x"}]
            return {"type": "static_select", "selected_option": {"value": self.rng.choice(options)["value"]}}
        if element["type"] == "datepicker":
            return {"type": "datepicker", "selected_date": "2027-03-01"}
        return {"type": "plain_text_input", "value": self.rng.choice(["An idea", "5", "", "x" * 300])}

    def make(self, n: int) -> SlackCase:
        secret = self.fake.signing_secret
        roll = self.rng.random()
        if roll < 0.04:
            label, body, ctype = self.rng.choice(SLACK_WIRE)
            return SlackCase(f"wire: {label}", body, {"Content-Type": ctype, **signed_headers(secret, body)})
        kind, inbound, user = self.base(n)
        url = inbound.payload.get("response_url")
        trigger = inbound.payload.get("trigger_id")
        if roll < 0.07:
            return self._tampered(kind, inbound)
        if roll < 0.10:
            payload, done = copy.deepcopy(inbound.payload), ["none"]  # unmutated: the normal path
        else:
            payload, done = self.mutator.mutate(
                inbound.payload, ("type", "actions", "view", "event", "user", "team", "channel", "text")
            )
        as_json = kind == "slash" and (
            self.rng.random() < 0.3 or any(not isinstance(v, str) for v in payload.values())
        )
        if inbound.envelope_type == "interactive":
            body = urlencode({"payload": json.dumps(payload)}).encode()
            ctype = "application/x-www-form-urlencoded"
        elif kind == "slash" and not as_json:
            body = urlencode(payload, errors="surrogatepass").encode()  # a form carries bytes only
            ctype = "application/x-www-form-urlencoded"
        else:
            body = json.dumps(payload).encode()
            ctype = "application/json"
        survived = isinstance(payload, dict) and isinstance(url, str) and payload.get("response_url") == url
        view = payload.get("view") if isinstance(payload, dict) else None
        form = (
            kind == "form"
            and payload.get("type") == "view_submission"
            and isinstance(view, dict)
            and isinstance(view.get("blocks"), list)
            and any(
                isinstance(b, dict) and b.get("type") == "input" and isinstance(b.get("block_id"), str)
                for b in view["blocks"]
            )
        )
        return SlackCase(
            f"{kind}: {', '.join(done)} (#{n})",
            body,
            {"Content-Type": ctype, **signed_headers(secret, body)},
            response_path=urlparse(url).path if survived and isinstance(url, str) else None,
            form=form,
            users=(user, _sender(payload)),
            trigger=trigger if isinstance(trigger, str) else None,
        )

    def _tampered(self, kind: str, inbound: SlackInbound) -> SlackCase:
        secret = self.fake.signing_secret
        body = inbound.body
        now = int(time.time())
        how = self.rng.choice(("wrong secret", "stale", "future", "no signature", "body swapped", "odd"))
        headers = {"Content-Type": inbound.content_type, **signed_headers(secret, body)}
        if how == "wrong secret":
            headers.update(signed_headers("not-the-secret", body))
        elif how == "stale":
            headers.update(signed_headers(secret, body, now - 301))
        elif how == "future":
            headers.update(signed_headers(secret, body, now + 301))
        elif how == "no signature":
            headers.pop("X-Slack-Signature")
        elif how == "body swapped":
            body = body.replace(b"U0FZ", b"U0AL")
        else:
            headers["X-Slack-Request-Timestamp"] = "1e9"
        return SlackCase(f"{kind}: signature {how}", body, headers, tampered=True)


def _sender(payload: Any) -> Any:
    """The user id a (mutated) payload names, wherever its kind keeps it."""
    if not isinstance(payload, dict):
        return None
    user, event = payload.get("user"), payload.get("event")
    if isinstance(user, dict):
        return user.get("id")
    if isinstance(event, dict):
        return event.get("user")
    return payload.get("user_id")


async def _slack_round(r: Any) -> tuple[list[str], list[Json]]:
    """A round in its vote phase; the buttons and forms people see then."""
    await r.form("maya", "start", {"title": "River", "purpose": "Less litter", "template": "standard"})
    for who in ("alice", "bob"):
        await r.form(who, "join", {"sector": "resident"})
    await r.form("alice", "contribute", {"text": "Plant reeds"})
    await r.form("bob", "contribute", {"text": "Bins at the bridge"})
    views = [c.view for c in r.fake.calls("views.open") if c.ok and isinstance(c.view, dict)]
    await r.command("maya", "next")
    # What people click while voting: the public "Vote" and the buttons of a deck card.
    from tests.adapters.slack.rig import card_buttons

    card = await r.open_deck("alice")
    deck = list(card_buttons(card).values()) if card else []
    return r.channel_buttons(r"^cv:") + deck, views


async def fuzz_slack(count: int, seed: int, workdir: Path, *, engine: AsyncEngine | None = None) -> Tally:
    from tests.adapters.slack.rig import rig

    tally = Tally("slack")
    rng = random.Random(seed)
    started = time.perf_counter()
    async with FakeSlackWebAPI() as fake, rig(fake, workdir, engine=engine) as r:
        buttons, views = await _slack_round(r)
        inputs = SlackInputs(fake, rng, buttons, views)
        cases: list[tuple[SlackCase, int, bytes]] = []
        seen = len(fake.calls_since(0))
        with watching(tally):
            for n in range(count):
                case = inputs.make(n)
                try:
                    resp = await r.sim.post(case.body, case.headers)
                except Exception:  # the endpoint did not answer at all
                    tally.crashes += 1
                    continue
                await r.settle()
                cases.append((case, resp.status, resp.body))
                # Every input is settled before the next, so what was sent meanwhile answered it.
                case.sent = fake.calls_since(seen)
                seen += len(case.sent)
        tally.inputs = count
        _score_slack(tally, cases)
    tally.seconds = time.perf_counter() - started
    return tally


def _score_slack(tally: Tally, cases: list[tuple[SlackCase, int, bytes]]) -> None:
    for case, status, body in cases:
        tally.statuses[status] += 1
        tally.kinds[case.label.split(":")[0]] += 1
        if status >= 500:
            tally.http_5xx += 1
        if case.tampered:
            tally.signature_refusals += 1
            tally.signature_401 += status == 401
            continue
        if case.response_path is None and not case.form:
            continue
        tally.answerable += 1
        inline = status == 200 and b'"response_action"' in body
        told = any(
            (c.method == "response_url" and c.path == case.response_path and c.status == 200)
            or (c.method == "chat.postEphemeral" and c.ok and c.get("user") in case.users)
            or (c.method == "views.open" and c.get("trigger_id") == case.trigger)
            for c in case.sent
        )
        if inline or told:
            tally.answered += 1
        else:
            tally.unanswered.append(f"{case.label} -> {status}")


# --- Discord ------------------------------------------------------------------------------------

ANSWERABLE_TYPES = (2, 3, 5)
TOKEN_ENV = "CONVENE_FUZZ_DISCORD_TOKEN"
OTHER_EVENTS = [
    "GUILD_CREATE",
    "GUILD_UPDATE",
    "GUILD_DELETE",
    "CHANNEL_CREATE",
    "CHANNEL_UPDATE",
    "MESSAGE_CREATE",
    "MESSAGE_UPDATE",
    "GUILD_MEMBER_UPDATE",
    "GUILD_ROLE_CREATE",
    "THREAD_CREATE",
    "TYPING_START",
    "NOT_AN_EVENT",
]


@dataclass
class DiscordCase:
    label: str
    answerable: bool
    record: Any = None  # the fake's InteractionRecord, when the frame had string id and token


class DiscordInputs:
    def __init__(self, rig: Any, rng: random.Random, rid: str, buttons: list[str]) -> None:
        self.rig = rig
        self.rng = rng
        self.mutator = Mutator(rng)
        self.rid = rid
        self.buttons = buttons
        self.people = ["alice", "bob", "carol", "maya", "owner"]

    def base(self) -> tuple[str, Json]:
        fake, rid = self.rig.fake, self.rid
        user = self.rig.users[self.rng.choice(self.people)]
        kind = self.rng.choices(("slash", "click", "modal"), (40, 40, 20))[0]
        if kind == "slash":
            sub, options = self.rng.choice(
                [
                    ("help", None),
                    ("status", None),
                    ("join", None),
                    ("contribute", None),
                    ("next", None),
                    ("link", {"code": "ABC123"}),
                    ("goal", {"idea": 1}),
                    ("frobnicate", None),
                ]
            )
            return kind, fake.slash("convene", sub, options, user=user)
        if kind == "click":
            custom_id = self.rng.choice([*self.buttons, f"cv:{rid}:join", "cvp:2:cv:x:form:goal"])
            message = fake.find_message(custom_id)
            if message is not None and int(message.get("flags") or 0) & 64:
                message = None  # a deck card is ephemeral: only its owner clicks it, so send it as forged
            if message is None:
                from tests.platform_fakes import discord_payloads as p

                message = p.message(
                    channel_id=fake.channel["id"],
                    guild_id=fake.channel["guild_id"],
                    author=fake.bot_user,
                    components=[p.action_row(p.button(custom_id))],
                )
            return kind, fake.click(custom_id, message, user=user)
        form, values = self.rng.choice(
            [
                (f"cv:{rid}:form:join", {"sector": ["resident"]}),
                (f"cv:{rid}:form:contribute", {"text": "Reeds"}),
                ("cv:-:form:start", {"title": "T", "purpose": "P", "template": ["standard"]}),
            ]
        )
        return "modal", fake.submit_modal(form, values, user=user)

    async def send(self) -> DiscordCase:
        fake = self.rig.fake
        roll = self.rng.random()
        if roll < 0.05:  # another event, with junk
            event = self.rng.choice(OTHER_EVENTS)
            await fake.dispatch(event, self.rng.choice(HOSTILE)(self.rng) if self.rng.random() < 0.5 else {})
            return DiscordCase(f"event {event}", False)
        if roll < 0.08:  # INTERACTION_CREATE that is no object
            await fake.send_interaction(self.rng.choice(HOSTILE)(self.rng))
            return DiscordCase("interaction: not an object", False)
        kind, payload = self.base()
        iid, token, itype = payload["id"], payload["token"], payload["type"]
        if roll < 0.11:
            mutated, done = copy.deepcopy(payload), ["none"]
        else:
            mutated, done = self.mutator.mutate(
                payload, ("data", "member", "user", "guild_id", "channel_id", "type", "id", "token")
            )
        record = await fake.send_interaction(mutated)
        answerable = (
            isinstance(mutated, dict)
            and mutated.get("id") == iid
            and mutated.get("token") == token
            and mutated.get("type") == itype
            and itype in ANSWERABLE_TYPES
        )
        return DiscordCase(f"{kind}: {', '.join(done)}", answerable, record)


async def _answered(rig: Any, case: DiscordCase) -> bool:
    rec = case.record
    try:
        body = await rec.callback(timeout=3.5)
    except TimeoutError:
        return False
    if body.get("type") in (4, 9):
        return True
    await rig.settle()  # a deferral: the answer is a follow-up the relay delivers
    try:
        await rec.wait_followups(1, timeout=3)
    except TimeoutError:
        return False
    return True


@contextlib.asynccontextmanager
async def _discord_running(rig: Any, tally: Tally) -> AsyncIterator[asyncio.Event]:
    """The Discord adapter as `convene run` runs it: `run_discord` under `supervise`. A supervised
    restart (the client ended) counts as a crash."""
    stop = asyncio.Event()
    config = replace(rig.app.config.discord, token_env=TOKEN_ENV)

    def restarted(cause: BaseException | None) -> None:
        tally.crashes += 1

    task = asyncio.create_task(
        supervise(
            "discord",
            lambda: run_discord(rig.app, config, stop, guild_ready_timeout=0.01),
            stop,
            Backoff(first=0.05, longest=0.2, jitter=0.0),
            on_restart=restarted,
        )
    )
    try:
        await rig.fake.wait_connected()
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def fuzz_discord(count: int, seed: int, workdir: Path, *, engine: AsyncEngine | None = None) -> Tally:
    from tests.adapters.discord.rig import make_rig

    tally = Tally("discord")
    rng = random.Random(seed)
    started = time.perf_counter()
    async with make_rig(workdir, engine=engine) as rig:
        with _token_env(rig.fake.token):
            async with _discord_running(rig, tally):
                rid = await rig.start_round()
                await rig.join("alice", rid)
                await rig.contribute("alice", rid, "Plant reeds")
                await rig.confirmed(await rig.slash("owner", "next"), "Cleaner river", "vote")
                # What people click while voting: the public "Vote" and a deck card's buttons.
                deck = f"cv:{rid}:deck"
                release = await rig.wait_public(lambda m: deck in rig.buttons(m))
                buttons = rig.buttons(release) + rig.buttons(await rig.open_deck("alice", rid))
                inputs = DiscordInputs(rig, rng, rid, buttons)
                with watching(tally):
                    for _ in range(count):
                        await rig.fake.wait_connected(10)
                        case = await inputs.send()
                        tally.kinds[case.label.split(":")[0]] += 1
                        if case.answerable:
                            tally.answerable += 1
                            if await _answered(rig, case):
                                tally.answered += 1
                            else:
                                tally.unanswered.append(case.label)
                        else:
                            await asyncio.sleep(0.002)  # let the client read the frame
                    await rig.settle()
                tally.inputs = count
    tally.seconds = time.perf_counter() - started
    return tally


@contextlib.contextmanager
def _token_env(token: str) -> Iterator[None]:
    old = os.environ.get(TOKEN_ENV)
    os.environ[TOKEN_ENV] = token
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(TOKEN_ENV, None)
        else:
            os.environ[TOKEN_ENV] = old
