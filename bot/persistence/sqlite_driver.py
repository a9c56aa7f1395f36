"""SQLite on the event loop's own thread; aiosqlite's thread only to wait for another's lock.

SQLite answers a click's small statements in tens of microseconds: far less than a trip to
aiosqlite's thread and back (the loop woken from another thread, the GIL handed over twice). Through
SQLAlchemy's aiosqlite adapter a statement takes four such trips (open a cursor, execute, fetch, close),
and a vote's transaction seventeen: about 4 ms, against a bare acknowledgement's 1 ms. So here a
statement runs where it is called, rows included, with SQLite's busy timeout at zero: it never waits
on the loop.

What would wait is a lock that another connection holds (its ``BEGIN IMMEDIATE``, in this process or
another; with WAL, readers never block). SQLite then answers SQLITE_BUSY at once, having done nothing,
and the statement goes to aiosqlite's thread to wait there with the configured timeout while the
loop runs on. Only a statement that began outside a transaction is sent to wait (``BEGIN IMMEDIATE``
itself, a PRAGMA, a checkpoint): every transaction takes its write lock at BEGIN, so inside one a
statement meets no lock, and a BUSY there is an error as before. ``COMMIT`` may wait too: a commit
that answered BUSY leaves the transaction open, to be committed again.

Used by ``make_engine`` for every ``sqlite+aiosqlite`` URL (passed as the engine's DBAPI module).
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

_Outcome = tuple[Any, list[Any] | None, int, int | None]
T = TypeVar("T")


def _run(conn: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Outcome:
    """The whole statement, rows included, and the cursor closed."""
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


def _busy(error: BaseException) -> bool:
    """SQLITE_BUSY (any of its extended codes): another connection holds the lock; nothing was done."""
    if not isinstance(error, sqlite3.OperationalError):
        return False
    return getattr(error, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY


def _waiting(conn: sqlite3.Connection, wait_ms: int, call: Callable[..., T], *args: Any) -> T:
    """In aiosqlite's thread: ``call`` with SQLite's busy handler waiting up to ``wait_ms``."""
    conn.execute(f"PRAGMA busy_timeout={int(wait_ms)}").close()
    try:
        return call(*args)
    finally:
        conn.execute("PRAGMA busy_timeout=0").close()


class InlineCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose statement runs on the calling thread. It holds no driver cursor: the
    description, rows, rowcount and last row id come back with the call."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")
    _adapt_connection: InlineConnection

    def __init__(self, adapt_connection: Any) -> None:
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass

    async def _async_soft_close(self) -> None:
        return None  # nothing is open in the driver

    def close(self) -> None:
        self._rows.clear()

    def _call(self, operation: Any, parameters: Any, many: bool) -> None:
        try:
            outcome = await_(self._statement(operation, parameters, many))
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = deque(rows) if rows is not None else deque()

    async def _statement(self, operation: Any, parameters: Any, many: bool) -> _Outcome:
        # A coroutine, though it seldom suspends: SQLAlchemy's async layer expects an await per call.
        adapt = self._adapt_connection
        raw: sqlite3.Connection = self._connection._conn
        if adapt._execute_mutex.locked():  # this connection is waiting in the thread: queue behind it
            return await adapt.wait_for_lock(_run, raw, operation, parameters, many)
        outside = not raw.in_transaction
        try:
            return _run(raw, operation, parameters, many)
        except sqlite3.OperationalError as error:
            # One statement is atomic: BUSY means it did nothing, so it can run again.
            if not (_busy(error) and outside and not many):
                raise
        return await adapt.wait_for_lock(_run, raw, operation, parameters, many)

    def execute(self, operation: Any, parameters: Any = None) -> None:
        self._call(operation, parameters, False)

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> None:
        self._call(operation, seq_of_parameters, True)


class InlineConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("_wait_ms",)
    _cursor_cls = InlineCursor

    def __init__(self, dbapi: Any, connection: Any, wait_ms: int) -> None:
        super().__init__(dbapi, connection)
        self._wait_ms = wait_ms

    async def wait_for_lock(self, call: Callable[..., T], *args: Any) -> T:
        """``call(*args)`` in aiosqlite's thread, SQLite waiting there for another connection's lock."""
        async with self._execute_mutex:
            driver: aiosqlite.Connection = self._connection  # type: ignore[assignment]
            return await driver._execute(_waiting, driver._conn, self._wait_ms, call, *args)  # type: ignore[no-any-return,no-untyped-call]

    async def fetch_waiting(self, sql: str) -> list[Any]:
        """The rows of ``sql`` run in aiosqlite's thread, waiting for locks (a WAL checkpoint)."""
        driver: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        _, rows, _, _ = await self.wait_for_lock(_run, driver._conn, sql, None, False)
        return rows or []

    def commit(self) -> None:
        try:
            await_(self._commit())
        except Exception as error:
            self._handle_exception(error)

    async def _commit(self) -> None:
        raw: sqlite3.Connection | None = self._connection._connection
        if raw is None:
            return
        try:
            raw.commit()
        except sqlite3.OperationalError as error:
            if not _busy(error):
                raise
            await self.wait_for_lock(raw.commit)  # the transaction is still open: commit it again

    def rollback(self) -> None:
        # The pool rolls back every connection it takes back, most of them just committed: with no
        # transaction open (we BEGIN ourselves, so the driver opens none) there is nothing to do.
        raw: sqlite3.Connection | None = self._connection._connection
        if raw is None or not raw.in_transaction:
            return
        try:
            raw.rollback()
        except Exception as error:
            self._handle_exception(error)


class InlineDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> InlineConnection:
        # sqlite3's own `timeout` (seconds) becomes the wait in aiosqlite's thread; on the loop, none.
        wait_ms = int(float(kw.get("timeout", 5.0)) * 1000)
        # Opened in aiosqlite's thread, used on the loop's: SQLite serialises a connection's calls.
        kw["check_same_thread"] = False
        adapted = super().connect(*arg, **kw)
        raw: sqlite3.Connection = adapted._connection._conn
        raw.execute("PRAGMA busy_timeout=0").close()
        return InlineConnection(self, adapted._connection, wait_ms)


def dbapi() -> InlineDBAPI:
    return InlineDBAPI(aiosqlite, sqlite3)
