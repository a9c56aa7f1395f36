"""Timers (phase deadlines, and any capability's timed work): rows in the database, claimed by a
poller and fired through the bus, so a timed change takes the same route as a click.

Each due timer is claimed, fired and marked done in one transaction (on PostgreSQL with
FOR UPDATE SKIP LOCKED, so several workers can share the work). A deadline that passed while the
process was down fires once at start-up; a duplicate or late timer finds the phase already moved
and does nothing. A timer that cannot reach its round key stays pending and is retried later: it
is never marked done without having done its work.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from sqlalchemy import select

from bot.domain.errors import DomainError
from bot.keys import KeyStoreUnreachable, KeyUnavailable
from bot.persistence.tables import TimerRow
from bot.service.core import Convene

log = logging.getLogger("convene.scheduler")

KEY_RETRY = dt.timedelta(seconds=30)


class DeadlineScheduler:
    def __init__(self, core: Convene, poll_seconds: float = 5.0) -> None:
        self.core = core
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
        while (outcome := await self._fire_one()) is not None:
            fired += outcome
        await self.core.bus.release_finished_keys()
        if fired:
            self.core.notify_outbox()
        return fired

    async def _fire_one(self) -> int | None:
        """1: a timer fired; 0: one was held back for a retry; None: nothing is due."""
        now = self.core.clock.now()
        async with self.core.sessions() as s, s.begin():
            stmt = (
                select(TimerRow)
                .where(
                    TimerRow.status == "pending", TimerRow.due_at <= now, TimerRow.id.not_in(list(self._held))
                )
                .order_by(TimerRow.due_at)
                .limit(1)
            )
            if s.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            timer = await s.scalar(stmt)
            if timer is None:
                return None
            timer.status = "done"
            try:
                async with s.begin_nested():
                    await self.core.bus.fire_timer(s, timer)
                self.fired += 1
                log.info("a %s timer fired", timer.kind)
                return 1
            except (KeyUnavailable, KeyStoreUnreachable, DomainError) as err:
                code = err.code if isinstance(err, DomainError) else "round_key_unavailable"
                if code != "round_key_unavailable":
                    log.warning("a %s timer could not act: %s", timer.kind, code)
                else:
                    # Never done without its work: held back in this process, retried after a pause.
                    timer.status = "pending"
                    self._held[timer.id] = now + KEY_RETRY
                    why = "unreachable" if isinstance(err, KeyStoreUnreachable) else "unavailable"
                    log.warning(
                        "a %s timer's round key is %s; retrying in %ss", timer.kind, why, KEY_RETRY.seconds
                    )
                    return 0
        return 1
