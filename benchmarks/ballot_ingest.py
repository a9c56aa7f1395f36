"""Ballot ingest: clicks per second through the core, batched (group commit) against one
transaction per click, measured in the same run on the same kind of database (each run on a fresh
one), with the CPU time this process spent per click.

    .venv/bin/python benchmarks/ballot_ingest.py [--voters 100] [--ideas 20]
        [--database-url postgresql://postgres@127.0.0.1/test]

Without --database-url: a SQLite file in a temporary folder. With it (PostgreSQL): a database of
each run's own on that server, created then dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select

from adapters.console.driver import ConsoleDriver
from benchmarks.databases import backend, fresh_database
from bot.app import build_app
from bot.config import parse_config
from bot.domain import commands as c
from bot.keys import MemoryKeyStore
from bot.persistence.tables import RoundRow
from bot.ports import FixedClock


async def one_run(batch_max: int, voters: int, ideas: int, url: str) -> tuple[float, float]:
    """Clicks per second, and CPU milliseconds per click (this process: the core and the driver)."""
    config = parse_config(
        {
            "database": {"url": url},
            "ingest": {"batch_max": batch_max},
            "rounds": {"contributions_per_participant": 50},
        }
    )
    ports = ConsoleDriver.make_ports()
    app = await build_app(
        config, dict(ports), keys=MemoryKeyStore(), clock=FixedClock(dt.datetime.now(dt.UTC))
    )
    d = ConsoleDriver(app, ports, ["maya"])
    maya = d.person("maya", "slack")
    form = await d.command(maya, "start")
    assert form is not None
    await d.submit(maya, form, {"title": "Bench", "purpose": "Measure ingest"})
    people = [d.person(f"p{i}", "slack") for i in range(voters)]
    for p in people:
        form = await d.command(p, "join")
        assert form is not None
        await d.submit(p, form, {"sector": random.choice(["business", "resident", ""])})
    for n in range(ideas):
        form = await d.command(people[0], "contribute")
        assert form is not None
        await d.submit(people[0], form, {"text": f"Idea {n}"})
        if n % 40 == 39:
            await d.settle()
    await d.command(maya, "next")
    async with app.sessions() as s:
        rid = await s.scalar(select(RoundRow.id))
    assert rid is not None
    clicks = [
        c.CastBallot(d.context(p), rid, idea, random.choice(["agree", "disagree", "pass"]))
        for p in people
        for idea in range(1, ideas + 1)
    ]
    started, cpu = time.perf_counter(), time.process_time()
    # Clicks arrive concurrently, as they do from many people; each waits for its own commit.
    await asyncio.gather(*(app.core.handle(click) for click in clicks))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    await app.aclose()
    return len(clicks) / seconds, cpu * 1000 / len(clicks)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--voters", type=int, default=100)
    parser.add_argument("--ideas", type=int, default=20)
    parser.add_argument("--database-url", help="PostgreSQL server to use (a database of each run's own)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        async with fresh_database(args.database_url, Path(tmp), "single") as url:
            single, single_cpu = await one_run(1, args.voters, args.ideas, url)
        async with fresh_database(args.database_url, Path(tmp), "batched") as url:
            batched, batched_cpu = await one_run(200, args.voters, args.ideas, url)
    print(f"ballots: {args.voters * args.ideas} concurrent clicks, {backend(url)}")
    print(f"one transaction per click : {single:9.0f} clicks/s  {single_cpu:6.2f} ms CPU per click")
    print(f"group commit (batch 200)  : {batched:9.0f} clicks/s  {batched_cpu:6.2f} ms CPU per click")
    print(f"ratio                     : {batched / single:9.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
