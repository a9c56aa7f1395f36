"""Is this worker healthy: the database answers, and the relay keeps up.

**Relay lag** is the age of the oldest outbox row that is due and not delivered (``pending``, its next
attempt now or past). A row that failed before carries its next attempt's time, so its age is exact.
A row never attempted carries no time at all (the outbox stores no creation time: a fine timestamp
beside a private reply would say when someone acted), so it is aged from when this process first
saw it due; that reads low by at most the interval between two checks. The lag is the
deployment's, not this worker's: every worker reads the same outbox.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.persistence.tables import OutboxRow
from bot.ports import Clock
from bot.service.errors import is_db_error

log = logging.getLogger("convene.health")

DB_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class Health:
    ok: bool
    database: bool
    relay_lag_seconds: float | None  # None: the database did not answer
    due_rows: int | None
    reasons: tuple[str, ...] = ()

    def as_json(self) -> dict[str, object]:
        return {
            "status": "ok" if self.ok else "unhealthy",
            "database": "ok" if self.database else "unreachable",
            "relay_lag_seconds": None if self.relay_lag_seconds is None else round(self.relay_lag_seconds, 1),
            "due_rows": self.due_rows,
            "reasons": list(self.reasons),
        }


@dataclass
class HealthCheck:
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    max_relay_lag_seconds: float = 120.0
    _first_seen: tuple[int, dt.datetime] | None = field(default=None, repr=False)

    async def check(self) -> Health:
        try:
            async with asyncio.timeout(DB_TIMEOUT_SECONDS):
                lag, due = await self._relay_lag()
        except Exception as err:
            if not (isinstance(err, TimeoutError | OSError) or is_db_error(err)):
                raise
            log.warning("health: the database did not answer (%s)", type(err).__name__)
            return Health(False, False, None, None, ("database unreachable",))
        if lag > self.max_relay_lag_seconds:
            why = f"relay lag {lag:.0f} s is over {self.max_relay_lag_seconds:g} s"
            return Health(False, True, lag, due, (why,))
        return Health(True, True, lag, due)

    async def _relay_lag(self) -> tuple[float, int]:
        now = self.clock.now()
        due = (
            OutboxRow.status == "pending",
            or_(OutboxRow.next_attempt_at.is_(None), OutboxRow.next_attempt_at <= now),
        )
        async with self.sessions() as s:
            await s.execute(text("SELECT 1"))
            retried_since, count = (
                await s.execute(select(func.min(OutboxRow.next_attempt_at), func.count()).where(*due))
            ).one()
            never_tried = await s.scalar(
                select(func.min(OutboxRow.seq)).where(
                    OutboxRow.status == "pending", OutboxRow.next_attempt_at.is_(None)
                )
            )
        lag = 0.0
        if retried_since is not None:
            lag = (now - retried_since).total_seconds()
        if never_tried is None:
            self._first_seen = None
        else:
            if self._first_seen is None or self._first_seen[0] != never_tried:
                self._first_seen = (int(never_tried), now)
            lag = max(lag, (now - self._first_seen[1]).total_seconds())
        return max(0.0, lag), int(count or 0)
