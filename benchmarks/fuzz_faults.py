"""Issue 12's fuzz figure: hostile inputs through both platforms, and what came of them.

Half of the inputs are signed HTTP requests into the real slack-bolt app, half are gateway frames
from the fake Discord into the real discord.py client running under the supervisor (the inputs and
the counting are in ``tests/adapters/fuzzing.py``). Prints, per platform and in total: HTTP 5xx,
tracebacks (log records and stderr), ERROR lines from the adapters, crashes, signature refusals
answered 401, and how many answerable inputs got a private answer. Exits 1 if any figure misses
(a 5xx, a traceback, an error, a crash, a refusal other than 401, an answerable input unanswered).

    .venv/bin/python benchmarks/fuzz_faults.py [--inputs 10000] [--seed 1] [--database postgresql://...]

With ``--database`` the round lives on that PostgreSQL server, in a database of this run's own
(created and dropped here); otherwise on SQLite in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

from bot.persistence.db import make_engine, normalise_url  # noqa: E402
from bot.persistence.tables import Base  # noqa: E402
from tests.adapters.fuzzing import Tally, fuzz_discord, fuzz_slack  # noqa: E402


@contextlib.asynccontextmanager
async def own_database(server: str | None) -> AsyncIterator[str | None]:
    """A fresh database on ``server`` for this run, dropped afterwards (never the one named)."""
    if server is None:
        yield None
        return
    import asyncpg

    admin = make_url(server).set(drivername="postgresql").render_as_string(False)
    name = f"convene_fuzz_{os.getpid()}_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield make_url(normalise_url(server)).set(database=name).render_as_string(hide_password=False)
    finally:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def fresh_engine(url: str | None) -> AsyncEngine | None:
    if url is None:
        return None
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(Base.metadata.create_all)
    return engine


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=10_000, help="in total, half per platform")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database", help="a PostgreSQL server URL (a database of this run's own is used)")
    parser.add_argument(
        "--show", action="store_true", help="print the first tracebacks and unanswered inputs"
    )
    args = parser.parse_args()
    slack_n = args.inputs // 2
    discord_n = args.inputs - slack_n
    tallies: list[Tally] = []
    async with own_database(args.database) as url:
        with tempfile.TemporaryDirectory() as slack_dir, tempfile.TemporaryDirectory() as discord_dir:
            engine = await fresh_engine(url)
            tallies.append(await fuzz_slack(slack_n, args.seed, Path(slack_dir), engine=engine))
            engine = await fresh_engine(url)
            tallies.append(await fuzz_discord(discord_n, args.seed, Path(discord_dir), engine=engine))
    total = tallies[0].merge(tallies[1])
    total.platform = "both platforms"
    print(f"seed {args.seed}, database {'PostgreSQL' if url else 'SQLite'}")
    for t in (*tallies, total):
        print("\n".join(t.lines()))
    if args.show:
        for line in [*total.traceback_lines[:5], *total.error_lines[:10], *total.unanswered[:20]]:
            print(line)
    missed = (
        total.http_5xx
        or total.tracebacks
        or total.errors
        or total.crashes
        or total.signature_401 != total.signature_refusals
        or total.answered != total.answerable
    )
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
