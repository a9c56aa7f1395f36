"""SQLite's inline driver (bot/persistence/sqlite_driver.py) behaves as the stock aiosqlite one
where it shows: rows, counts, errors, rollbacks, and a writer waiting for a lock never stops the loop;
and a statement that meets no lock runs on the loop's thread (no hand-off)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from bot.persistence.db import make_engine


async def _table(path: Path):  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{path}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
    return engine


def _locked_by_another_process(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection holding the write lock, as another process would."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    return other


async def _insert(engine, name: str) -> None:  # type: ignore[no-untyped-def]
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO t (name) VALUES (:n)"), {"n": name})


async def _names(engine) -> list[str]:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return list((await conn.execute(text("SELECT name FROM t ORDER BY id"))).scalars().all())


async def test_rows_counts_and_ids_come_back_with_the_statement(tmp_path: Path) -> None:
    engine = await _table(tmp_path / "a.db")
    async with engine.begin() as conn:
        inserted = await conn.execute(text("INSERT INTO t (name) VALUES (:n)"), [{"n": "a"}, {"n": "b"}])
        assert inserted.rowcount == 2
        one = await conn.execute(text("INSERT INTO t (name) VALUES ('c')"))
        assert one.lastrowid == 3
        returned = await conn.execute(text("INSERT INTO t (name) VALUES ('d') RETURNING id, name"))
        assert returned.all() == [(4, "d")]
        changed = await conn.execute(text("UPDATE t SET name = name || '!' WHERE id <= 2"))
        assert changed.rowcount == 2
    async with engine.connect() as conn:
        names = (await conn.execute(text("SELECT name FROM t ORDER BY id"))).scalars().all()
        streamed = [row async for row in await conn.stream(text("SELECT id FROM t ORDER BY id"))]
    assert names == ["a!", "b!", "c", "d"]
    assert [r[0] for r in streamed] == [1, 2, 3, 4]
    await engine.dispose()


async def test_a_failed_statement_rolls_back_its_transaction(tmp_path: Path) -> None:
    engine = await _table(tmp_path / "b.db")

    async def twice() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t (name) VALUES ('x')"))
            await conn.execute(text("INSERT INTO t (name) VALUES ('x')"))

    with pytest.raises(IntegrityError):
        await twice()
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 0
    await engine.dispose()


async def test_a_writer_waiting_for_the_lock_leaves_the_loop_running(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    holder, waiter = await _table(path), make_engine(f"sqlite:///{path}")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    async with holder.begin() as held:
        await held.execute(text("INSERT INTO t (name) VALUES ('first')"))

        async def second() -> None:
            async with waiter.begin() as conn:  # BEGIN IMMEDIATE waits for the holder's lock
                await conn.execute(text("INSERT INTO t (name) VALUES ('second')"))

        pending = asyncio.create_task(second())
        await asyncio.sleep(0.3)
        assert not pending.done()
        assert ticks >= 10  # the loop went on while the second writer waited in its thread
    await asyncio.wait_for(pending, 10)
    ticker.cancel()
    async with waiter.connect() as conn:
        names = (await conn.execute(text("SELECT name FROM t ORDER BY id"))).scalars().all()
    assert names == ["first", "second"]
    await holder.dispose()
    await waiter.dispose()


async def test_a_statement_that_meets_no_lock_runs_on_the_loops_thread(tmp_path: Path) -> None:
    engine = await _table(tmp_path / "d.db")
    async with engine.begin() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.create_function("thread_id", 0, threading.get_ident)
        here = (await conn.execute(text("SELECT thread_id()"))).scalar()
    assert here == threading.get_ident()
    await engine.dispose()


async def test_a_lock_held_by_another_process_is_waited_for_off_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    engine = await _table(path)
    other = _locked_by_another_process(path)
    other.execute("INSERT INTO t (name) VALUES ('theirs')")
    pending = asyncio.create_task(_insert(engine, "ours"))
    await asyncio.sleep(0.2)  # the loop runs (this line returns) while our BEGIN waits for the lock
    assert not pending.done()
    other.execute("COMMIT")
    await asyncio.wait_for(pending, 10)
    other.close()
    assert await _names(engine) == ["theirs", "ours"]
    await engine.dispose()


async def test_a_wait_for_a_lock_given_up_holds_neither_the_loop_nor_the_connection(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    engine = await _table(path)
    other = _locked_by_another_process(path)
    given_up = asyncio.create_task(_insert(engine, "given up"))
    await asyncio.sleep(0.1)
    given_up.cancel()  # e.g. a platform's deadline: its BEGIN still waits in aiosqlite's thread
    loop = asyncio.get_running_loop()
    began = loop.time()
    for _ in range(10):
        await asyncio.sleep(0.01)
    assert loop.time() - began < 1  # the loop runs on while the cancelled BEGIN waits
    other.execute("COMMIT")
    other.close()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(given_up, 10)
    await asyncio.wait_for(_insert(engine, "next"), 10)  # the connection went back to the pool, usable
    assert await _names(engine) == ["next"]
    await engine.dispose()
