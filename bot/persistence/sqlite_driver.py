"""SQLite through aiosqlite with one thread hand-off per statement instead of four.

SQLAlchemy's aiosqlite adapter makes a statement four trips to aiosqlite's thread: open a cursor,
execute, fetch the rows, close the cursor. Each trip wakes the event loop from another thread, which
costs far more than SQLite's own work on the small statements of a click (a vote's transaction is
BEGIN, four statements and COMMIT: 17 hand-offs, about 4 ms, against a bare acknowledgement's 1 ms).
Here one function runs the four steps inside aiosqlite's thread, so a statement costs one trip.
SQLite still runs in that thread: a writer waiting on another process's lock never blocks the loop.

Used by ``make_engine`` for every ``sqlite+aiosqlite`` URL (passed as the engine's DBAPI module).
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

_Outcome = tuple[Any, list[Any] | None, int, int | None]


def _run(conn: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Outcome:
    """In aiosqlite's thread: the whole statement, rows included, and the cursor closed."""
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


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose statement is one call into aiosqlite's thread. It holds no driver
    cursor: the description, rows, rowcount and last row id come back with the call."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

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
            outcome: _Outcome = await_(self._one_hop(operation, parameters, many))
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = deque(rows) if rows is not None else deque()

    async def _one_hop(self, operation: Any, parameters: Any, many: bool) -> _Outcome:
        async with self._adapt_connection._execute_mutex:
            driver: aiosqlite.Connection = self._connection  # type: ignore[assignment]
            return await driver._execute(_run, driver._conn, operation, parameters, many)  # type: ignore[no-any-return,no-untyped-call]

    def execute(self, operation: Any, parameters: Any = None) -> None:
        self._call(operation, parameters, False)

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> None:
        self._call(operation, seq_of_parameters, True)


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneHopCursor

    def rollback(self) -> None:
        # The pool rolls back every connection it takes back, most of them just committed: with no
        # transaction open (we BEGIN ourselves, so the driver opens none) that is a trip for nothing.
        # Reading the flag from this thread is safe: no statement of this connection is in flight.
        raw: sqlite3.Connection | None = self._connection._connection
        if raw is not None and not raw.in_transaction:
            return
        super().rollback()


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection:
        adapted = super().connect(*arg, **kw)
        return OneHopConnection(self, adapted._connection)


def dbapi() -> OneHopDBAPI:
    return OneHopDBAPI(aiosqlite, sqlite3)
