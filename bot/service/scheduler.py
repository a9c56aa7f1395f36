"""Phase deadlines: rows in the database, claimed by a poller.

Each due timer is claimed, acted on and marked done in one transaction (on PostgreSQL with
FOR UPDATE SKIP LOCKED, so several workers can share the work). A deadline that passed while the
process was down fires once at start-up; a duplicate or late timer finds the phase already moved
and does nothing.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select

from bot.domain.errors import DomainError
from bot.domain.phases import NEXT, Phase
from bot.persistence.tables import RoundRow, TimerRow
from bot.service.core import Convene

log = logging.getLogger("convene.scheduler")


class DeadlineScheduler:
    def __init__(self, core: Convene, poll_seconds: float = 5.0) -> None:
        self.core = core
        self.poll_seconds = poll_seconds
        self.fired = 0

    async def run_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:
                log.exception("deadline pass failed; retrying")
            try:
                await asyncio.wait_for(stop.wait(), self.poll_seconds)
            except TimeoutError:
                pass

    async def run_once(self) -> int:
        fired = 0
        while await self._fire_one():
            fired += 1
        if fired:
            self.core.notify_outbox()
        return fired

    async def _fire_one(self) -> bool:
        now = self.core.clock.now()
        async with self.core.sessions() as s, s.begin():
            stmt = (
                select(TimerRow)
                .where(TimerRow.status == "pending", TimerRow.due_at <= now)
                .order_by(TimerRow.due_at)
                .limit(1)
            )
            if s.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            timer = await s.scalar(stmt)
            if timer is None:
                return False
            timer.status = "done"
            rnd = await s.get(RoundRow, timer.round_id)
            if timer.kind == "phase_deadline" and rnd is not None and rnd.phase == timer.phase:
                phase = Phase(rnd.phase)
                if phase in NEXT:
                    try:
                        async with s.begin_nested():
                            await self.core.transition(s, rnd, NEXT[phase])
                        self.fired += 1
                        log.info("a phase deadline moved a round to %s", NEXT[phase].value)
                    except DomainError as err:
                        log.warning("a deadline could not advance a round: %s", err.code)
        return True
