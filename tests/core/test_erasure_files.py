"""D10 and A7, checked black-box: a round played on a SQLite file, then `convene purge` or `convene
erase` run as the operator would, then the database file and its write-ahead log searched byte by
byte for the people's user ids."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from adapters.console.driver import ConsoleDriver
from bot.app import build_app
from bot.config import load_config
from bot.keys import new_kek
from bot.ports import FixedClock
from bot.service.handlers import retention
from tests.core import story
from tests.harness import Harness

ROOT = Path(__file__).resolve().parents[2]
USER_IDS = [f"U-{name}".encode() for name, _p, _s in story.PEOPLE]


def write_config(tmp: Path, roster_days: int = 0) -> Path:
    (tmp / "kek.b64").write_text(new_kek() + "\n")
    path = tmp / "convene.yaml"
    path.write_text(
        f"database: {{url: 'sqlite+aiosqlite:///{tmp / 'convene.db'}'}}\n"
        f"anonymity: {{key_dir: '{tmp / 'keys'}', kek_file: '{tmp / 'kek.b64'}'}}\n"
        f"retention: {{roster_days: {roster_days}}}\n"
        "rounds: {sector_min_voters: 2}\n"
        "console: {conveners: [maya, ade]}\n"
    )
    return path


@contextlib.asynccontextmanager
async def running(config: Path, until: str) -> AsyncIterator[Harness]:
    """A round on the config's own database and key store, played up to ``until``, with the app still
    running (holding its connections, as `convene run` does while the operator purges or erases)."""
    ports = ConsoleDriver.make_ports()
    clock = FixedClock(dt.datetime(2025, 1, 10, 9, 0, tzinfo=dt.UTC))
    app = await build_app(load_config(config), dict(ports), clock=clock)
    h = Harness(app, ConsoleDriver(app, ports, ["maya", "ade"]), ports, clock, app.core.keys)
    try:
        if until == "closed":
            # Goal and action dates long past by the purge (the system clock): follow-up is over,
            # so conveners and owners are forgotten with the roster.
            await story.to_close(h, volunteer="kim", due="2025-02-01", deadline="2025-06-01")
        else:
            await story.to_vote(h)
            for n in (1, 2, 3):
                for name, _p, _s in story.PEOPLE:
                    await story.vote(h, name, n, "Agree")
        await app.core.services.compactor.wait()
        yield h
    finally:
        await app.aclose()


def files(config: Path) -> bytes:
    """Every byte SQLite keeps for the database: the file, its write-ahead log and shared memory.
    Read by another process: closing a file descriptor of the database in this one would drop the
    running app's POSIX locks on it, and SQLite would then treat the next connection to close as
    the last one and checkpoint for us."""
    db = config.parent / "convene.db"
    paths = [str(p) for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]
    return subprocess.run(["cat", *paths], capture_output=True, check=True).stdout


def holding(config: Path, ids: list[bytes]) -> list[str]:
    """Which of ``ids`` the database files hold (names only: a failure never prints the bytes)."""
    found = files(config)
    return [uid.decode() for uid in ids if uid in found]


def convene(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CONVENE_KEK"}
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def count(config: Path, sql: str) -> int:
    """After the app has stopped (this process opening the file would drop a running app's locks)."""
    with contextlib.closing(sqlite3.connect(config.parent / "convene.db")) as conn:
        return int(conn.execute(sql).fetchone()[0])


async def test_D10_purge_after_close_leaves_no_user_id_in_the_database_or_its_wal(tmp_path: Path) -> None:
    config = write_config(tmp_path, roster_days=0)
    async with running(config, "closed"):
        assert len(holding(config, USER_IDS)) == len(USER_IDS), "the round left its roster on disk"
        done = convene("purge", "--config", str(config))
        assert done.returncode == 0, done.stderr
        assert "1 round lost who took part: 6 roster rows" in done.stdout
        assert "write-ahead log was checkpointed and truncated" in done.stdout
        # Searched while `convene run` still holds the database open (its WAL is not deleted then).
        assert holding(config, USER_IDS) == []
    assert count(config, "select count(*) from ideas") == 4  # what was said stays
    assert count(config, "select count(*) from ballots") == 4 * len(story.PEOPLE)
    assert count(config, "select count(*) from actions where owner_name = 'Kim'") == 1  # named on purpose


async def test_D10_the_daily_pass_in_a_running_app_leaves_no_user_id_in_the_files(tmp_path: Path) -> None:
    config = write_config(tmp_path, roster_days=0)
    async with running(config, "closed") as h:
        h.clock.current = dt.datetime.now(dt.UTC)  # Kim's action (due 2025-02-01) is past due
        await retention.ensure_daily_pass(h.app.sessions, h.clock)
        await h.app.scheduler.run_once()
        await h.app.core.services.compactor.wait()
        assert holding(config, USER_IDS) == []


async def test_A7_erase_removes_one_person_from_the_files_during_a_round(tmp_path: Path) -> None:
    config = write_config(tmp_path, roster_days=30)
    others = [uid for uid in USER_IDS if uid != b"U-raj"]
    async with running(config, "vote") as h:
        ballots = await h.scalar("select count(*) from ballots")
        assert holding(config, [b"U-raj"]) == ["U-raj"]
        done = convene("erase", "--config", str(config), "--user", "slack:U-raj")
        assert done.returncode == 0, done.stderr
        out = done.stdout
        assert "Erased slack:U-raj from 1 round." in out
        assert "Kept, and why" in out
        assert "3 votes were tied to them by a pseudonym" in out
        assert holding(config, [b"U-raj"]) == []
        assert len(holding(config, others)) == len(others)  # only that person
        assert await h.scalar("select count(*) from ballots") == ballots
        assert await h.scalar("select count(*) from participants") == len(story.PEOPLE) - 1

        again = convene("erase", "--config", str(config), "--user", "slack:U-raj")
        assert again.returncode == 0
        assert "Nothing on record names slack:U-raj" in again.stdout


def test_erase_refuses_a_user_it_cannot_read(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    done = convene("erase", "--config", str(config), "--user", "U-raj")
    assert done.returncode == 2
    assert "PLATFORM:USER_ID" in done.stderr
    assert "Traceback" not in done.stderr
