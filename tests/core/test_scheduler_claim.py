"""The scheduler's claim after downtime: the due timers come from the partial index of pending
timers (done ones, which only grow, are in no index it reads), on SQLite and on PostgreSQL. The
figures are in benchmarks/scheduler_claim.py; here, what keeps them: the plan, and the claim's work."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import event, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.ids import new_id
from bot.persistence.tables import TimerRow
from bot.service.scheduler import claim_statement
from tests.harness import make_harness

NOW = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)


async def plan(engine: AsyncEngine, *, held: bool) -> str:
    """The database's plan for one batch of the scheduler's claim, as the scheduler sends it (the
    statement and its parameters caught on their way to the driver, then explained)."""
    sent: list[tuple[str, Any]] = []

    def catch(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        sent.append((statement, parameters))

    params: dict[str, object] = {"now": NOW, "limit": 100, **({"held": ["x"]} if held else {})}
    sqlite = engine.dialect.name == "sqlite"
    async with engine.connect() as conn:
        event.listen(conn.sync_connection, "before_cursor_execute", catch)
        async with conn.begin() as tx:
            await conn.execute(claim_statement(sqlite, held=held), params)
            await tx.rollback()
        event.remove(conn.sync_connection, "before_cursor_execute", catch)
        statement, parameters = sent[-1]
        if sqlite:
            rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            return "\n".join(str(r[-1]) for r in rows)
        await conn.exec_driver_sql("SET enable_seqscan = off")  # a handful of rows: is the index usable?
        rows = await conn.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        return "\n".join(str(r[0]) for r in rows)


async def test_the_claim_reads_the_pending_timers_index_in_due_order(engine: AsyncEngine) -> None:
    h = await make_harness(engine)
    await h.close()
    async with engine.begin() as conn:
        await conn.execute(
            insert(TimerRow),
            [
                {"id": new_id(), "round_id": None, "kind": "k", "phase": "-", "due_at": NOW, "status": s}
                for s in ("pending", "done", "done")
            ],
        )
    for held in (False, True):
        found = await plan(engine, held=held)
        assert "ix_timers_pending_due_at" in found, found
        assert "TEMP B-TREE" not in found, found  # SQLite reads them in due order, no sort after
        assert "Sort" not in found, found  # nor does PostgreSQL
