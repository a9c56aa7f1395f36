"""Scheduler: a pass over 10,000 open actions with their reminders ("due soon", "due", the overdue
escalation: 30,000 pending timers, beside 10,000 done ones), after the process was down for a few
days. Prints, on SQLite and (with --database-url) on PostgreSQL:

* the claim: finding and marking every due timer (the figure with a target: under 100 ms), with the
  partial index of pending timers of migration 0008 and, as baselines, the (status, due_at) index of
  0004 and the separate indexes of 0001;
* the whole pass: claimed in batches and each fired through the bus (its DM written to the outbox),
  against the scheduler it replaced (one timer per transaction) measured in the same run.

    .venv/bin/python benchmarks/scheduler_claim.py [--database-url postgresql://postgres@127.0.0.1/test]
        [--actions 10000] [--down-days 7]

On PostgreSQL a database of the benchmark's own is created on that server and dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import build_app
from bot.config import parse_config
from bot.domain import accountability as acc
from bot.ids import new_id
from bot.keys import MemoryKeyStore
from bot.persistence.db import make_engine, normalise_url
from bot.persistence.tables import (
    ActionRow,
    Base,
    FollowUpRow,
    GoalRow,
    RoundRow,
    TimerRow,
)
from bot.ports import FixedClock
from bot.service import followup as fu
from bot.service.registry import DueTimer
from bot.service.scheduler import DeadlineScheduler

START = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)
REPEAT = 7
Figure = tuple[float, int, float]  # wall ms, timers claimed or fired, this process's CPU ms
KINDS = {acc.DUE_SOON: fu.DUE_SOON, acc.DUE: fu.DUE, acc.OVERDUE: fu.OVERDUE}


async def seed(engine: AsyncEngine, actions: int, indexes: str = "0008") -> None:
    """A closed round followed up since START: ``actions`` actions owned by Slack people, due over
    the next 100 days, each with its three reminders pending, and as many timers already done.
    ``indexes``: the timers table as that migration left it."""
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(Base.metadata.create_all)
        for index in ("ix_timers_pending_due_at", "ix_timers_status_due_at"):  # as an older worktree has it
            await conn.execute(text(f"DROP INDEX IF EXISTS {index}"))
        if indexes == "0008":  # the pending timers alone, in due order
            await conn.execute(
                text("CREATE INDEX ix_timers_pending_due_at ON timers (due_at) WHERE status = 'pending'")
            )
        if indexes == "0004":  # one index on (status, due_at)
            await conn.execute(text("CREATE INDEX ix_timers_status_due_at ON timers (status, due_at)"))
        if indexes == "0001":  # separate indexes
            await conn.execute(text("CREATE INDEX ix_timers_status ON timers (status)"))
            await conn.execute(text("CREATE INDEX ix_timers_due_at ON timers (due_at)"))
    rng = random.Random(1)
    rid = new_id()
    goals = [new_id() for _ in range(10)]
    action_rows, timer_rows = [], []
    for n in range(1, actions + 1):
        aid = new_id()
        due = START.date() + dt.timedelta(days=rng.randrange(1, 100))
        action_rows.append(
            {
                "id": aid,
                "round_id": rid,
                "goal_id": goals[n % len(goals)],
                "number": n,
                "title": f"Action {n}",
                "owner_name": f"Owner {n}",
                "owner_ref": f"slack\x1fT1\x1fU{n}",
                "due": due,
                "status": "not_started",
            }
        )
        for r in acc.reminder_plan(due, START, tz="UTC", hour=9, days_before=3):
            timer_rows.append(
                {
                    "id": new_id(),
                    "round_id": rid,
                    "kind": KINDS[r.kind],
                    "phase": "closed",
                    "due_at": r.at,
                    "status": "pending",
                    "subject": aid,
                }
            )
        timer_rows.append(  # history: a timer that fired long ago
            {
                "id": new_id(),
                "round_id": rid,
                "kind": fu.PROGRESS,
                "phase": "closed",
                "due_at": START - dt.timedelta(days=rng.randrange(1, 300)),
                "status": "done",
                "subject": rid,
            }
        )
    async with engine.begin() as conn:
        await conn.execute(
            insert(RoundRow),
            [
                {
                    "id": rid,
                    "title": "Bench",
                    "purpose": "Measure the scheduler",
                    "template": "standard",
                    "language": "en",
                    "phase": "closed",
                    "version": 1,
                    "join_code": None,
                    "conveners": ["slack\x1fT1\x1fU0"],
                    "settings": {"sector_min_voters": 5},
                    "key_destroyed": True,
                }
            ],
        )
        await conn.execute(
            insert(FollowUpRow),
            [{"round_id": rid, "started_on": START.date(), "progress_days": 7, "over": False}],
        )
        await conn.execute(
            insert(GoalRow),
            [
                {
                    "id": g,
                    "round_id": rid,
                    "number": i + 1,
                    "title": f"Goal {i + 1}",
                    "outcome": "o",
                    "metric": "m",
                    "unit": "u",
                    "baseline": 0.0,
                    "target": 10.0,
                    "deadline": START.date() + dt.timedelta(days=300),
                    "pilot": False,
                }
                for i, g in enumerate(goals)
            ],
        )
        for table, rows in ((ActionRow, action_rows), (TimerRow, timer_rows)):
            for i in range(0, len(rows), 5000):
                await conn.execute(insert(table), rows[i : i + 5000])
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            await conn.execute(text("ANALYZE"))


async def open_app(engine: AsyncEngine, url: str) -> DeadlineScheduler:
    config = parse_config({"database": {"url": url}})
    app = await build_app(
        config, {}, keys=MemoryKeyStore(), clock=FixedClock(START), engine=engine, migrate=False
    )
    return DeadlineScheduler(
        app.core, batch=DeadlineScheduler.batch_for(engine.dialect.name)
    )  # as `convene run`


async def warm(scheduler: DeadlineScheduler, run: Callable[[DeadlineScheduler], Awaitable[int]]) -> None:
    """A running process has its connection open and its statements compiled: one pass with nothing
    due yet, as the poller makes every few seconds."""
    await at(scheduler, START - dt.timedelta(days=1), run)


async def at(
    scheduler: DeadlineScheduler, now: dt.datetime, run: Callable[[DeadlineScheduler], Awaitable[int]]
) -> Figure:
    """Wall time, and this process's CPU time: on SQLite that includes the database's own work (in
    aiosqlite's thread), on PostgreSQL only the client's. The CPU figure is the one other helpers'
    load on this shared machine leaves alone."""
    clock = scheduler.core.clock
    assert isinstance(clock, FixedClock)
    clock.current = now
    started, cpu = time.perf_counter(), time.process_time()
    count = await run(scheduler)
    return (time.perf_counter() - started) * 1000, count, (time.process_time() - cpu) * 1000


async def claims(url: str, actions: int, moments: list[dt.datetime], *, indexes: str) -> list[Figure]:
    """The claim alone at each moment: the median of REPEAT runs (this machine is shared), each
    undone before the next."""
    engine = make_engine(url)
    try:
        await seed(engine, actions, indexes)
        scheduler = await open_app(engine, url)
        await warm(scheduler, claim_all)
        out = []
        for now in moments:
            runs = []
            for _ in range(REPEAT):
                runs.append(await at(scheduler, now, claim_all))
                async with engine.begin() as conn:  # undo: the seeded done timers are progress posts
                    await conn.execute(
                        text("UPDATE timers SET status = 'pending' WHERE status = 'done' AND kind <> :k"),
                        {"k": fu.PROGRESS},
                    )
            wall, cpu = (statistics.median(r[i] for r in runs) for i in (0, 2))
            out.append((wall, runs[0][1], cpu))
        await scheduler.core.ingest.aclose()
        return out
    finally:
        await engine.dispose()


async def one_pass(
    url: str, actions: int, now: dt.datetime, run: Callable[[DeadlineScheduler], Awaitable[int]]
) -> Figure:
    engine = make_engine(url)
    try:
        await seed(engine, actions)
        scheduler = await open_app(engine, url)
        await warm(scheduler, run)
        result = await at(scheduler, now, run)
        await scheduler.core.ingest.aclose()
        return result
    finally:
        await engine.dispose()


async def claim_all(scheduler: DeadlineScheduler) -> int:
    """Claim every due timer, in the scheduler's batches and transactions, without firing them."""
    total = 0
    now = scheduler.core.clock.now()
    while True:
        async with scheduler.core.sessions() as s, s.begin():
            n = len(await scheduler.claim(s, now))
        total += n
        if n < scheduler.batch:
            return total


async def full_pass(scheduler: DeadlineScheduler) -> int:
    return await scheduler.run_once()


async def one_per_transaction(scheduler: DeadlineScheduler) -> int:
    """The scheduler before batching: one due timer claimed, fired and marked per transaction."""
    core, fired = scheduler.core, 0
    now = core.clock.now()
    while True:
        async with core.sessions() as s, s.begin():
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
                return fired
            timer.status = "done"
            async with s.begin_nested():
                await core.bus.fire_timer(s, DueTimer(*(getattr(timer, f) for f in DueTimer._fields)))
            fired += 1


async def measure(url: str, actions: int, down_days: int) -> dict[str, Figure]:
    day = START + dt.timedelta(days=1, hours=1)
    down = START + dt.timedelta(days=down_days, hours=1)
    new = await claims(url, actions, [day, down], indexes="0008")
    mid = await claims(url, actions, [day, down], indexes="0004")
    old = await claims(url, actions, [day, down], indexes="0001")
    return {
        "claim_day": new[0],
        "claim_down": new[1],
        "claim_day_0004": mid[0],
        "claim_down_0004": mid[1],
        "claim_day_old": old[0],
        "claim_down_old": old[1],
        "pass": await one_pass(url, actions, down, full_pass),
        "baseline": await one_pass(url, actions, down, one_per_transaction),
    }


async def admin(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(False))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", help="a PostgreSQL server to measure on as well")
    parser.add_argument("--actions", type=int, default=10_000)
    parser.add_argument("--down-days", type=int, default=7, help="days the process was down before the pass")
    args = parser.parse_args()
    results: dict[str, dict[str, Figure]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["SQLite"] = await measure(
            f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", args.actions, args.down_days
        )
    if args.database_url:
        name = f"convene_bench_{secrets.token_hex(4)}"
        await admin(args.database_url, f'CREATE DATABASE "{name}"')
        try:
            url = make_url(normalise_url(args.database_url)).set(database=name).render_as_string(False)
            results["PostgreSQL"] = await measure(url, args.actions, args.down_days)
        finally:
            await admin(args.database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    first = results["SQLite"]
    print(
        f"scheduler: {args.actions:,} open actions, {3 * args.actions:,} reminders pending "
        f"(+{args.actions:,} timers done); claims are the median of {REPEAT} runs;\n"
        "wall time (this process's CPU time: on SQLite with the database's work, on PostgreSQL without)"
    )
    names = list(results)
    print(f"{'':44}" + "".join(f"{n:>24}" for n in names))

    def row(label: str, key: str) -> None:
        cells = (results[n][key] for n in names)
        print(f"{label:44}" + "".join(f"{ms:11.1f} ms ({cpu:6.1f} ms)" for ms, _, cpu in cells))

    print("claim the due ones (target < 100 ms)")
    row(f"  the next day: {first['claim_day'][1]:,} due", "claim_day")
    row("    with 0004's (status, due_at) index", "claim_day_0004")
    row("    with 0001's separate indexes", "claim_day_old")
    row(f"  after {args.down_days} days down: {first['claim_down'][1]:,} due", "claim_down")
    row("    with 0004's (status, due_at) index", "claim_down_0004")
    row("    with 0001's separate indexes", "claim_down_old")
    print(f"a whole pass after {args.down_days} days down (claim, fire each through the bus)")
    row(
        f"  in batches ({DeadlineScheduler.BATCH} SQLite, {DeadlineScheduler.PG_BATCH} PG), a savepoint each",
        "pass",
    )
    row("  one timer per transaction (before)", "baseline")
    print(
        f"{'  ratio':44}"
        + "".join(f"{results[n]['baseline'][0] / results[n]['pass'][0]:23.1f}x" for n in names)
    )
    for n in names:
        r = results[n]
        assert r["pass"][1] == r["baseline"][1] == r["claim_down"][1] == r["claim_down_old"][1], n


if __name__ == "__main__":
    asyncio.run(main())
