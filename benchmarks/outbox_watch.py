"""The outbox watch (``watch_outbox``, once a minute on every worker): what one pass costs beside a
busy outbox. The outbox holds ``--history`` delivered public posts (kept until retention purges
them), a thousand old posts that failed for good and were reported long ago, private replies on
their way, and one channel stalled for 20 minutes (reported in the first pass; later passes find
nothing new). Prints, on SQLite and (with --database-url) on PostgreSQL, the median of REPEAT
passes in CPU time and wall time:

* a scheduler pass that fires the watch (``take_stalls``, the notices, the re-arm);
* as the baseline, measured in the same run: a scheduler pass with nothing due, which every worker
  makes every ``scheduler.poll_seconds`` anyway.

    .venv/bin/python benchmarks/outbox_watch.py [--database-url postgresql://postgres@127.0.0.1/test]
        [--history 100000]

On PostgreSQL a database of the benchmark's own is created on that server and dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import build_app
from bot.config import parse_config
from bot.ids import new_id
from bot.keys import MemoryKeyStore
from bot.persistence.db import make_engine, normalise_url
from bot.persistence.tables import Base, ConversationRow, OutboxRow, RoundRow
from bot.ports import FixedClock
from bot.service.handlers.outages import WATCH, ensure_watch
from bot.service.scheduler import DeadlineScheduler

START = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)
REPEAT = 9
CHANNELS = 10


def post(rid: str, channel: int, status: str, **extra: object) -> dict[str, object]:
    return {
        "round_id": rid,
        "platform": "slack",
        "workspace_id": "T1",
        "channel_id": f"C{channel}",
        "visibility": "public",
        "body": {"parts": [{"prompt": "vote/release_idea", "params": {"label": 1, "text": "x" * 80}}]},
        "status": status,
        "attempts": 0,
        "message_id": None,
        "recipient_id": None,
        "failing_since": None,
        "stall_noticed": False,
    } | extra


async def seed(engine: AsyncEngine, history: int) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(Base.metadata.create_all)
    rid, old = new_id(), new_id()
    rounds = [
        {
            "id": r,
            "title": "Bench",
            "purpose": "Measure the watch",
            "template": "standard",
            "language": "en",
            "phase": phase,
            "version": 1,
            "join_code": None,
            "conveners": ["slack\x1fT1\x1fU0", "discord\x1fG1\x1f42"],
            "settings": {"sector_min_voters": 5},
            "key_destroyed": phase == "closed",
        }
        for r, phase in ((rid, "vote"), (old, "closed"))
    ]
    convs = [
        {"id": new_id(), "round_id": r, "platform": "slack", "workspace_id": "T1", "channel_id": f"C{c}"}
        for r in (rid, old)
        for c in range(CHANNELS)
    ]
    rows = [post(rid, n % CHANNELS, "sent", message_id=f"m{n}") for n in range(history)]
    since = START - dt.timedelta(days=30)
    rows += [post(old, n % CHANNELS, "failed", failing_since=since, stall_noticed=True) for n in range(1000)]
    rows += [post(rid, 0, "pending", failing_since=START - dt.timedelta(minutes=20)) for _ in range(20)]
    rows += [
        post(rid, 1, "pending") | {"visibility": "private", "recipient_id": f"U{n}", "channel_id": "C1"}
        for n in range(200)
    ]
    async with engine.begin() as conn:
        await conn.execute(insert(RoundRow), rounds)
        await conn.execute(insert(ConversationRow), convs)
        for i in range(0, len(rows), 5000):
            await conn.execute(insert(OutboxRow), rows[i : i + 5000])
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            await conn.execute(text("ANALYZE"))


async def timed(scheduler: DeadlineScheduler) -> tuple[float, float, int]:
    cpu, wall = time.process_time(), time.perf_counter()
    fired = await scheduler.run_once()
    return (time.process_time() - cpu) * 1000, (time.perf_counter() - wall) * 1000, fired


async def measure(url: str, history: int) -> dict[str, tuple[float, float]]:
    engine = make_engine(url)
    try:
        await seed(engine, history)
        clock = FixedClock(START)
        config = parse_config({"database": {"url": url}})
        app = await build_app(config, {}, keys=MemoryKeyStore(), clock=clock, engine=engine, migrate=False)
        scheduler = DeadlineScheduler(app.core)
        await ensure_watch(app.sessions, clock)
        first = await timed(scheduler)  # the stall is found and reported: two notices written
        assert first[2] == 1
        assert await _count(engine, "select count(*) from outbox where visibility = 'direct'") == 2
        watch, idle = [], []
        for _ in range(REPEAT):
            clock.advance(minutes=1)
            watch.append(await timed(scheduler))
            idle.append(await timed(scheduler))  # nothing due: the watch re-armed a minute ahead
        assert all(f == 1 for *_t, f in watch)
        assert all(f == 0 for *_t, f in idle)
        assert await _count(engine, "select count(*) from outbox where visibility = 'direct'") == 2
        assert await _count(engine, f"select count(*) from timers where kind = '{WATCH}'") == 1
        await app.core.ingest.aclose()
        return {"watch": medians(watch), "idle": medians(idle)}
    finally:
        await engine.dispose()


def medians(runs: list[tuple[float, float, int]]) -> tuple[float, float]:
    return statistics.median(c for c, _w, _f in runs), statistics.median(w for _c, w, _f in runs)


async def _count(engine: AsyncEngine, sql: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(sql))).scalar() or 0)


def report(name: str, history: int, got: dict[str, tuple[float, float]]) -> None:
    (wc, ww), (ic, iw) = got["watch"], got["idle"]
    print(f"{name}: outbox of {history + 1220:,} rows ({history:,} delivered posts), median of {REPEAT}")
    print(f"  watch pass (take_stalls, re-arm)   cpu {wc:7.2f} ms   wall {ww:7.2f} ms")
    print(f"  baseline: a pass with nothing due  cpu {ic:7.2f} ms   wall {iw:7.2f} ms")
    print(f"  ratio watch/baseline (cpu) {wc / ic:5.1f}x; once a minute: {wc / 600:.3f}% of one core")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="also run on this PostgreSQL server")
    parser.add_argument("--history", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/watch.db"
        report("SQLite", args.history, await measure(url, args.history))
    if args.database_url:
        base = make_url(normalise_url(args.database_url))
        name = f"bench_watch_{secrets.token_hex(4)}"
        admin = make_engine(base.render_as_string(hide_password=False))
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = base.set(database=name).render_as_string(hide_password=False)
            report("PostgreSQL", args.history, await measure(url, args.history))
        finally:
            async with admin.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
