"""A fresh database for one benchmark run: a SQLite file in a folder, or a database of the run's own
on the PostgreSQL server a ``--database-url`` names (created, then dropped; the one named is never
touched)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.persistence.db import normalise_url


@contextlib.asynccontextmanager
async def fresh_database(url: str | None, folder: Path, name: str) -> AsyncIterator[str]:
    if not url:
        yield f"sqlite+aiosqlite:///{folder / f'{name}.db'}"
        return
    u = make_url(normalise_url(url))
    if u.get_backend_name() != "postgresql":
        raise SystemExit(f"--database-url: PostgreSQL expected, not {u.get_backend_name()}")
    import asyncpg

    db = f"convene_bench_{name}_{os.getpid()}_{secrets.token_hex(3)}"
    admin = u.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{db}"')
    finally:
        await conn.close()
    try:
        yield u.set(database=db).render_as_string(hide_password=False)
    finally:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        finally:
            await conn.close()


def backend(url: str) -> str:
    return "PostgreSQL" if make_url(normalise_url(url)).get_backend_name() == "postgresql" else "SQLite (WAL)"
