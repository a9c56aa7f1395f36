"""What a handler works with: one transaction (a :class:`Unit`) and the long-lived services.

A handler loads, asks the domain, writes rows and outbox rows through its unit, and raises events
through it; everything it writes commits together or not at all.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.config import AppConfig
from bot.domain.commands import Context
from bot.domain.errors import DomainError
from bot.domain.phases import OPEN_PHASES
from bot.domain.rules import is_convener
from bot.ids import ComponentId
from bot.keys import KeyStore, pseudonym
from bot.messages import ButtonSpec, Message, Part, Style
from bot.persistence.db import truncate_wal
from bot.persistence.tables import ParticipantRow, RoundRow
from bot.ports import Clock
from bot.prompts import Prompts
from bot.refs import UserRef
from bot.service.outbox import post_everywhere, private_row
from bot.service.registry import Registry

PARTS_PER_MESSAGE = 5

log = logging.getLogger("convene.unit")


class RoundKeys:
    """Per-round pseudonym keys from the key store, cached in this process for at most ``ttl``
    seconds. Another worker may close a round and shred its key: every command reads the round row,
    and the bus drops the cached key of a round that is over (:meth:`release`); the ttl bounds how
    long an idle worker keeps a key it no longer needs."""

    def __init__(
        self, store: KeyStore, ttl: float = 600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[str, tuple[float, bytes]] = {}

    def create(self, round_id: str) -> None:
        self.store.create(round_id)

    def get(self, round_id: str) -> bytes:
        now = self.clock()
        cached = self._cache.get(round_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        key = self.store.get(round_id)
        if key is None:
            self._cache.pop(round_id, None)
            raise DomainError("round_key_unavailable")
        self._cache[round_id] = (now + self.ttl, key)
        self._expire(now)
        return key

    def release(self, rnd: RoundRow) -> None:
        """Forget the key of a round that is over (closed here or by another worker)."""
        if rnd.key_destroyed or rnd.phase not in OPEN_PHASES:
            self.forget(rnd.id)

    def cached(self) -> list[str]:
        return list(self._cache)

    def _expire(self, now: float) -> None:
        for round_id in [r for r, (until, _key) in self._cache.items() if until <= now]:
            del self._cache[round_id]

    def pseudonym(self, round_id: str, user: UserRef) -> str:
        return pseudonym(self.get(round_id), user.key())

    def forget(self, round_id: str) -> None:
        self._cache.pop(round_id, None)

    def shred_after_commit(self, session: AsyncSession, round_id: str) -> None:
        """Destroy the key once the close commits; a rolled-back close keeps the round usable."""

        def shred(_session: Any) -> None:
            self.forget(round_id)
            self.store.destroy(round_id)

        event.listen(session.sync_session, "after_commit", shred, once=True)


class Compactor:
    """After a commit that deleted rows naming people (a close, an erase, a purge), SQLite's write-
    ahead log is checkpointed and truncated (``truncate_wal``), in a task of its own: the deleted
    rows, zeroed in the database file by ``secure_delete``, are then left in no file."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[bool]] = set()

    def after_commit(self, session: AsyncSession) -> None:
        if session.info.get("compact"):
            return  # once per transaction, however many reasons it has
        session.info["compact"] = True
        engine = session.bind

        def compact(_session: Any) -> None:
            if not isinstance(engine, AsyncEngine):
                return
            task = asyncio.get_running_loop().create_task(self._compact(engine))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        event.listen(session.sync_session, "after_commit", compact, once=True)

    @staticmethod
    async def _compact(engine: AsyncEngine) -> bool:
        try:
            return await truncate_wal(engine)
        except Exception as err:  # the next close, erase or purge tries again
            log.warning("could not truncate the write-ahead log: %s", type(err).__name__)
            return False

    async def wait(self) -> None:
        """Until the compactions started so far are done (tests, and shutdown)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)


@dataclass
class Services:
    """What every unit shares. ``rng`` shuffles and draws join codes (cryptographic by default;
    tests and the demo seed it for golden transcripts)."""

    config: AppConfig
    clock: Clock
    prompts: Prompts
    keys: RoundKeys
    rng: random.Random
    registry: Registry
    compactor: Compactor = field(default_factory=Compactor)


Emit = Callable[["Unit", Any], Awaitable[None]]


class Unit:
    """One transaction on behalf of one person (``ctx``; None for the scheduler)."""

    def __init__(
        self,
        services: Services,
        session: AsyncSession,
        ctx: Context | None,
        emit: Emit,
    ) -> None:
        self.services = services
        self.s = session
        self.ctx = ctx
        self._emit = emit
        self._round: RoundRow | None = None
        self.participant: ParticipantRow | None = None  # the actor's roster row, when the rule looked

    # --- what the bus resolved ----------------------------------------------------------------

    @property
    def round(self) -> RoundRow:
        if self._round is None:
            raise RuntimeError("this command was not registered as acting on a round")
        return self._round

    @round.setter
    def round(self, value: RoundRow) -> None:
        self._round = value

    @property
    def actor(self) -> Context:
        if self.ctx is None:
            raise RuntimeError("this command has no person behind it")
        return self.ctx

    @property
    def config(self) -> AppConfig:
        return self.services.config

    @property
    def rng(self) -> random.Random:
        return self.services.rng

    @property
    def keys(self) -> RoundKeys:
        return self.services.keys

    def now(self) -> dt.datetime:
        return self.services.clock.now()

    def today(self) -> dt.date:
        return self.now().date()

    def label(self, group: str, key: str) -> str:
        return self.services.prompts.label(group, key)

    def render(self, key: str, params: Mapping[str, Any]) -> str:
        return self.services.prompts.render(key, params)

    def is_convener(self, rnd: RoundRow | None = None) -> bool:
        ctx = self.actor
        rnd = rnd if rnd is not None else self._round
        if rnd is None:
            return ctx.is_convener
        return is_convener(ctx.is_convener, ctx.actor.key(), rnd.conveners)

    def pseudonym(self, user: UserRef | None = None, round_id: str | None = None) -> str:
        return self.keys.pseudonym(round_id or self.round.id, user or self.actor.actor)

    # --- output, through the outbox -----------------------------------------------------------

    def reply(
        self,
        prompt: str,
        params: Mapping[str, Any] | None = None,
        buttons: Sequence[ButtonSpec] = (),
        *,
        to: Context | None = None,
        round_id: str | None = None,
    ) -> None:
        """A private reply to the person who asked (or ``to``)."""
        self.reply_message(Message((Part(prompt, params or {}, tuple(buttons)),)), to=to, round_id=round_id)

    def reply_message(
        self, message: Message, *, to: Context | None = None, round_id: str | None = None
    ) -> None:
        if round_id is None and self._round is not None:
            round_id = self._round.id
        self.s.add(private_row(to or self.actor, message, round_id))

    async def post(self, message: Message, *, slot: str | None = None, round_id: str | None = None) -> None:
        """Post (or, with a slot, edit) in every conversation linked to the round."""
        await post_everywhere(self.s, round_id or self.round.id, message, slot=slot)

    async def post_chunked(self, header: Part, parts: Sequence[Part]) -> None:
        """A header and many parts, a few per message (Discord allows five rows of buttons in one)."""
        if not parts:
            await self.post(Message((header,)))
            return
        for i in range(0, len(parts), PARTS_PER_MESSAGE):
            chunk = tuple(parts[i : i + PARTS_PER_MESSAGE])
            await self.post(Message((header, *chunk) if i == 0 else chunk))

    async def post_list(
        self,
        header: Part,
        prompt: str,
        items: Sequence[Mapping[str, Any]],
        per_message: int,
        buttons: Callable[[Sequence[Mapping[str, Any]]], Sequence[ButtonSpec]],
        slot: Callable[[Sequence[Mapping[str, Any]]], str] | None = None,
    ) -> None:
        """A header and a compact list, ``per_message`` items to a message, each message with the
        buttons ``buttons`` gives for its items (one "Vote" button; goal buttons naming their idea).
        With ``slot``, each message is a slot named for its items (a release list, edited in place
        when the conveners remove an idea)."""
        if not items:
            await self.post(Message((header,)))
            return
        for i in range(0, len(items), per_message):
            chunk = items[i : i + per_message]
            part = Part(prompt, {"ideas": list(chunk)}, tuple(buttons(chunk)))
            message = Message((header, part) if i == 0 else (part,))
            await self.post(message, slot=slot(chunk) if slot is not None else None)

    # --- events -------------------------------------------------------------------------------

    async def emit(self, event: Any) -> None:
        """Run every reaction registered for ``event`` now, in this transaction."""
        await self._emit(self, event)


def button(
    round_id: str,
    verb: str,
    *args: str | int,
    label: str | None = None,
    style: Style = "default",
    params: Mapping[str, Any] | None = None,
) -> ButtonSpec:
    """A button that carries the id of what it acts on (``cv:<round>:<verb>:<args>``); ``params``
    fill its label ("Make Idea {label} a goal")."""
    cid = ComponentId(round_id, verb, tuple(str(a) for a in args))
    return ButtonSpec(cid.encode(), label or verb, style, params)
