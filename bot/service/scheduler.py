"""Timers (phase deadlines, follow-up reminders, any capability's timed work): rows in the database,
claimed by a poller and fired through the bus, so a timed change takes the same route as a click.

A pass claims the due timers in batches: one transaction selects up to ``batch`` of them in due
order (on PostgreSQL with FOR UPDATE SKIP LOCKED, so several workers can share the work), fires each
in a savepoint of its own and marks it done, and commits them together. A deadline that passed while
the process was down fires once at start-up; a duplicate or late timer finds its work done and does
nothing. A timer that cannot reach its round key stays pending and is retried later: it is never
marked done without having done its work. One that fails for another reason (a bug) is held back
the same way, so it never blocks the timers behind it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from typing import Any, cast

from sqlalchemy import (
    ColumnClause,
    ColumnElement,
    Integer,
    Select,
    Table,
    Update,
    bindparam,
    event,
    literal_column,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.errors import DomainError
from bot.keys import KeyStoreUnreachable, KeyUnavailable
from bot.persistence.tables import TimerRow
from bot.service.core import Convene
from bot.service.errors import is_db_error
from bot.service.registry import DueTimer

log = logging.getLogger("convene.scheduler")

KEY_RETRY = dt.timedelta(seconds=30)


class DeadlineScheduler:
    # Timers claimed and fired per transaction. A batch holds SQLite's one write lock while it fires
    # (a few ms a timer), so clicks wait at most about that long behind a pass after downtime.
    BATCH = 100
    # On PostgreSQL a batch blocks nobody (other workers skip its locked rows), so a pass after
    # downtime takes larger batches and spends fewer commits.
    PG_BATCH = 500

    @classmethod
    def batch_for(cls, dialect: str) -> int:
        return cls.PG_BATCH if dialect == "postgresql" else cls.BATCH

    def __init__(self, core: Convene, poll_seconds: float = 5.0, batch: int = BATCH) -> None:
        self.core = core
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.fired = 0
        self._held: dict[str, dt.datetime] = {}  # timers waiting for a round key, until when

    async def run_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:
                log.exception("timer pass failed; retrying")
            try:
                await asyncio.wait_for(stop.wait(), self.poll_seconds)
            except TimeoutError:
                pass

    async def run_once(self) -> int:
        fired = 0
        now = self.core.clock.now()
        self._held = {k: until for k, until in self._held.items() if until > now}
        while True:
            claimed, done = await self._fire_batch()
            fired += done
            if claimed == 0:  # again until nothing is due: a timer may make another due now
                break
        await self.core.bus.release_finished_keys()
        if fired:
            self.core.notify_outbox()
        return fired

    async def _fire_batch(self) -> tuple[int, int]:
        """One transaction: claim up to ``batch`` due timers, fire each in a savepoint. Returns how
        many were claimed and how many did their work."""
        now = self.core.clock.now()
        fired = 0
        async with self.core.sessions() as s, s.begin():
            # Rows one timer loads (its round, a goal) stay in the identity map for the next ones,
            # which otherwise holds them weakly and loads them again for every timer.
            loaded: list[object] = []
            event.listen(s.sync_session, "loaded_as_persistent", lambda _s, obj: loaded.append(obj))
            timers = await self.claim(s, now)
            for timer in timers:
                try:
                    async with s.begin_nested():
                        await self.core.bus.fire_timer(s, timer)
                except (KeyUnavailable, KeyStoreUnreachable, DomainError) as err:
                    code = err.code if isinstance(err, DomainError) else "round_key_unavailable"
                    if code != "round_key_unavailable":
                        log.warning("a %s timer could not act: %s", timer.kind, code)
                        continue
                    # Never done without its work: held back in this process, retried after a pause.
                    await self._hold(s, timer, now)
                    why = "unreachable" if isinstance(err, KeyStoreUnreachable) else "unavailable"
                    log.warning(
                        "a %s timer's round key is %s; retrying in %ss", timer.kind, why, KEY_RETRY.seconds
                    )
                    continue
                except Exception as err:
                    if isinstance(err, OSError) or is_db_error(err):
                        raise  # the whole pass is retried; nothing was marked
                    await self._hold(s, timer, now)
                    log.exception("a %s timer failed; retrying it later", timer.kind)
                    continue
                fired += 1
                self.core.metrics.timer_fired(timer.kind)
                log.info("a %s timer fired", timer.kind)
        self.fired += fired
        return len(timers), fired

    async def claim(self, s: AsyncSession, now: dt.datetime) -> list[DueTimer]:
        """The due timers, oldest first, marked done in this transaction by one statement (a firing
        that cannot do its work puts its timer back). See ``claim_statement``."""
        conn = await s.connection()
        sqlite = conn.dialect.name == "sqlite"
        params: dict[str, object] = {"now": now, "limit": self.batch}
        if self._held:
            params["held"] = list(self._held)
        if conn.dialect.update_returning:
            result = await conn.execute(claim_statement(sqlite, held=bool(self._held)), params)
            timers = [DueTimer._make(row) for row in result]
        else:  # SQLite before 3.35: read, then mark
            due = _due(sqlite, held=bool(self._held))
            read = select(*_COLUMNS).where(_key(sqlite).in_(due.scalar_subquery()))
            timers = [DueTimer._make(row) for row in await conn.execute(read, params)]
            if timers:
                mark = update(_TIMERS).where(_TIMERS.c.id.in_([t.id for t in timers]))
                await conn.execute(mark.values(status="done"))
        timers.sort(key=lambda t: (t.due_at, t.id))
        return timers

    async def _hold(self, s: AsyncSession, timer: DueTimer, now: dt.datetime) -> None:
        await s.execute(update(TimerRow).where(TimerRow.id == timer.id).values(status="pending"))
        self._held[timer.id] = now + KEY_RETRY


_TIMERS = cast(Table, TimerRow.__table__)
# What a firing reads of a timer, in DueTimer's order.
_COLUMNS = tuple(_TIMERS.c[name] for name in DueTimer._fields)
# Written into the SQL, not bound: both planners then match it to the partial index of pending timers.
_PENDING: ColumnClause[str] = literal_column("'pending'")


def _key(sqlite: bool) -> ColumnElement[Any]:
    """SQLite addresses the claimed rows by rowid, so marking one does not look it up again by id."""
    return literal_column("rowid") if sqlite else _TIMERS.c.id


def _due(sqlite: bool, *, held: bool) -> Select[Any]:
    due = (
        select(_key(sqlite))
        .select_from(_TIMERS)
        .where(
            _TIMERS.c.status == _PENDING, _TIMERS.c.due_at <= bindparam("now", type_=_TIMERS.c.due_at.type)
        )
        .order_by(_TIMERS.c.due_at)
        .limit(bindparam("limit", type_=Integer()))
    )
    if held:  # timers waiting for their round key in this process
        due = due.where(_TIMERS.c.id.not_in(bindparam("held", expanding=True)))
    if not sqlite:  # rows another worker holds are skipped, never waited for or taken
        due = due.with_for_update(skip_locked=True)
    return due


@functools.cache
def claim_statement(sqlite: bool, *, held: bool) -> Update:
    """The claim, one statement for a batch: the first ``limit`` pending timers due by ``now``, read
    from the partial index of pending timers in due order (done ones are in no index it reads),
    marked done, their columns returned. Built once; each batch only binds ``now`` and ``limit``
    (and the held timers' ids), and no ORM object is made for a claimed row."""
    due = _due(sqlite, held=held)
    claim = update(_TIMERS).where(_key(sqlite).in_(due.scalar_subquery())).values(status="done")
    return claim.returning(*_COLUMNS)
