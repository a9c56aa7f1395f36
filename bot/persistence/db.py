"""Engines and sessions for SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import StaticPool


def dialect_insert(dialect_name: str) -> Any:
    """The dialect's ``insert`` (with ``on_conflict_do_*``), imported on first use: a worker on
    SQLite never loads the PostgreSQL dialect (~2 MiB), nor one on PostgreSQL SQLite's."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def normalise_url(url: str) -> str:
    """Accept the plain URLs people write and pick the async drivers we ship."""
    u = make_url(url)
    if u.drivername in ("sqlite", "sqlite+pysqlite"):
        u = u.set(drivername="sqlite+aiosqlite")
    elif u.drivername in ("postgres", "postgresql", "postgresql+psycopg2", "postgresql+psycopg"):
        u = u.set(drivername="postgresql+asyncpg")
    return u.render_as_string(hide_password=False)


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    url = normalise_url(url)
    u = make_url(url)
    if u.get_backend_name() != "sqlite":
        asyncpg = u.get_driver_name() == "asyncpg"
        engine = create_async_engine(url, pool_pre_ping=not asyncpg, **kwargs)
        if asyncpg:
            event.listen(engine.sync_engine.pool, "checkout", _ping)  # pre-ping in one round trip
        return engine
    memory = u.database in (None, "", ":memory:")
    if memory:
        kwargs.setdefault("poolclass", StaticPool)
    from bot.persistence import sqlite_driver  # not loaded by a worker on PostgreSQL

    kwargs.setdefault("module", sqlite_driver.dbapi())
    engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # We issue BEGIN ourselves (below); the driver's implicit BEGIN DEFERRED would let two
        # writers both read and then one fail with "database is locked" on upgrade.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        # No busy_timeout here: the driver waits for another's lock off the loop (sqlite_driver.py),
        # up to connect_args' timeout.
        # Deleted rows (withdrawn ideas, delivered private replies) are overwritten, not left in free pages.
        cur.execute("PRAGMA secure_delete=ON")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _ping(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """Every connection taken from the pool is tried first, so one the server dropped (a restart, a
    failover) is replaced instead of failing a command. What ``pool_pre_ping`` does, in one round
    trip: SQLAlchemy's asyncpg ping wraps its statement in BEGIN and ROLLBACK (three round trips on
    every checkout, i.e. every transaction). A statement without parameters goes over the simple
    query protocol and prepares nothing (safe behind pgbouncer's transaction pooling, which that
    wrapping is for)."""
    try:
        dbapi_conn.run_async(lambda conn: conn.execute("SELECT 1"))
    except Exception:
        raise exc.DisconnectionError("the pooled connection did not answer") from None


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def truncate_wal(engine: AsyncEngine, attempts: int = 5) -> bool:
    """SQLite: copy the write-ahead log into the database file and truncate it to zero bytes, so
    rows just deleted (with ``secure_delete`` zeroing them in the database file) live on in no file.
    True when done; False on PostgreSQL (see ARCHITECTURE.md, "Retention and erasure": VACUUM) or
    when readers kept it from finishing (the next close, erase or purge tries again)."""
    if engine.dialect.name != "sqlite":
        return False
    for attempt in range(attempts):
        async with engine.connect() as conn:
            # The driver's own connection: outside any transaction (ours would begin IMMEDIATE). The
            # checkpoint waits for writers and readers in aiosqlite's thread, not on the loop.
            raw = await conn.get_raw_connection()
            adapted: Any = raw.dbapi_connection  # sqlite_driver.InlineConnection
            rows = await adapted.fetch_waiting("PRAGMA wal_checkpoint(TRUNCATE)")
        if not rows or not rows[0][0]:
            return True
        await asyncio.sleep(0.1 * (attempt + 1))
    return False
