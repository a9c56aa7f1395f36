"""Which relay worker this process is, and which workers are alive.

A worker's identity is a lock that goes away the moment its process dies: on PostgreSQL a session
advisory lock held on a connection kept for the process's life (the server drops it when the socket
closes); on a SQLite file an ``flock`` on ``<database>.relay-<id>.lock`` beside it (the kernel drops it).
So a restarted process takes the same identity at once, and with it the rows its predecessor had in
flight, while two live processes never share one. Without ``outbox.worker_id`` the identity is
``<hostname>-<n>`` with the lowest ``n`` that no live process holds: stable per host and process slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import re
import socket
import uuid
import zlib
from pathlib import Path
from typing import IO

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger("convene.relay")

# First keys of the two-key advisory locks: one names relay workers, one serialises claims.
WORKER_LOCK_CLASS = 0x43565257  # "CVRW"
CLAIM_LOCK_CLASS = 0x43565243  # "CVRC"
SLOTS = 64  # default identities tried per host before falling back to a one-off name

# Identities held by this process, per database: two relays in one process (tests, or two apps) never
# share one, whatever the database can tell.
_HELD: set[tuple[str, str]] = set()


def worker_key(worker_id: str) -> int:
    """The advisory lock's second key (pg_locks shows it as ``objid``, unsigned)."""
    return zlib.crc32(worker_id.encode())


def _int4(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


def default_prefix() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:40] or "host"


class WorkerIdentity:
    """This process's relay identity, held until `release`."""

    def __init__(self, worker_id: str, database: str) -> None:
        self.worker_id = worker_id
        self._database = database
        _HELD.add((database, worker_id))

    async def try_lock(self) -> bool:
        return True

    async def check(self) -> bool:
        """Whether the lock is still held (re-taking it if its connection was lost)."""
        return True

    async def live_workers(self) -> set[int] | None:
        """Keys (`worker_key`) of the workers alive now, or None when this database cannot tell."""
        return None

    async def release(self) -> None:
        _HELD.discard((self._database, self.worker_id))


class _PostgresIdentity(WorkerIdentity):
    def __init__(self, worker_id: str, database: str, engine: AsyncEngine) -> None:
        super().__init__(worker_id, database)
        self._engine = engine
        self._conn: AsyncConnection | None = None
        self._guard = asyncio.Lock()  # one statement at a time on the held connection

    async def _connection(self) -> AsyncConnection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            conn = await self._engine.connect()
            # Autocommit: the connection idles outside any transaction for the life of the process.
            self._conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    async def try_lock(self) -> bool:
        async with self._guard:
            conn = await self._connection()
            got = await conn.scalar(
                text("SELECT pg_try_advisory_lock(:a, :b)"),
                {"a": _int4(WORKER_LOCK_CLASS), "b": _int4(worker_key(self.worker_id))},
            )
            if not got:
                await self._drop()
            return bool(got)

    async def check(self) -> bool:
        async with self._guard:
            try:
                conn = await self._connection()
                held = await conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
                        " AND classid = :a AND objid = :b AND objsubid = 2 AND granted"
                    ),
                    {"a": WORKER_LOCK_CLASS, "b": worker_key(self.worker_id)},
                )
                if held:
                    return True
            except Exception as err:
                log.warning(
                    "relay worker %s lost its lock connection (%s)", self.worker_id, type(err).__name__
                )
                await self._drop()
        if await self.try_lock():
            log.info("relay worker %s holds its lock again", self.worker_id)
            return True
        return False

    async def live_workers(self) -> set[int] | None:
        async with self._guard:
            conn = await self._connection()
            rows = await conn.execute(
                text(
                    "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND classid = :a"
                    " AND objsubid = 2 AND granted"
                    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                ),
                {"a": WORKER_LOCK_CLASS},
            )
            return {int(r[0]) for r in rows}

    async def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.invalidate()  # closes the socket: the server drops the lock
            self._conn = None

    async def release(self) -> None:
        async with self._guard:
            await self._drop()
        await super().release()


class _FileIdentity(WorkerIdentity):
    def __init__(self, worker_id: str, database: str, path: Path) -> None:
        super().__init__(worker_id, database)
        self._path = path
        self._file: IO[bytes] | None = None

    async def try_lock(self) -> bool:
        # A local file, opened once per start: not worth a thread. Held open for the identity's life.
        f = self._path.open("ab")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            return False
        self._file = f
        return True

    async def release(self) -> None:
        if self._file is not None:
            self._file.close()  # drops the flock
            self._file = None
        await super().release()


def _database_key(engine: AsyncEngine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _sqlite_path(engine: AsyncEngine) -> Path | None:
    database = make_url(engine.url).database
    if engine.dialect.name != "sqlite" or database in (None, "", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def _make(worker_id: str, engine: AsyncEngine) -> WorkerIdentity:
    key = _database_key(engine)
    if engine.dialect.name == "postgresql":
        return _PostgresIdentity(worker_id, key, engine)
    path = _sqlite_path(engine)
    if path is not None:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", worker_id)
        return _FileIdentity(worker_id, key, path.with_name(f"{path.name}.relay-{safe}.lock"))
    return WorkerIdentity(worker_id, key)  # an in-memory database lives and dies with this process


async def _try(worker_id: str, engine: AsyncEngine) -> WorkerIdentity | None:
    if (_database_key(engine), worker_id) in _HELD:
        return None
    identity = _make(worker_id, engine)
    try:
        if await identity.try_lock():
            return identity
    except BaseException:
        await identity.release()
        raise
    await identity.release()
    return None


async def acquire(engine: AsyncEngine, configured: str | None, *, wait: float = 1.0) -> WorkerIdentity:
    """This process's identity: ``configured`` (waiting while a live process holds it), else the
    lowest free ``<hostname>-<n>``."""
    if configured:
        warned = False
        while True:
            identity = await _try(configured, engine)
            if identity is not None:
                return identity
            if not warned:
                log.warning("relay worker id %s is held by a live process; waiting for it", configured)
                warned = True
            await asyncio.sleep(wait)
    prefix = default_prefix()
    for n in range(SLOTS):
        identity = await _try(f"{prefix}-{n}", engine)
        if identity is not None:
            return identity
    one_off = f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    log.warning("all %d relay worker slots on this host are held; running as %s", SLOTS, one_off)
    identity = await _try(one_off, engine)
    assert identity is not None
    return identity
