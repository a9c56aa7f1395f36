"""Shared fixtures: the database under test (SQLite always; PostgreSQL when
CONVENE_TEST_DATABASE_URL is set) and a whole app wired to in-memory chat ports (tests/harness.py).

Kept light: the pure tier (tests/domain) loads this file too, and must not pay for the app."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from tests.harness import Harness

PG_URL = os.environ.get("CONVENE_TEST_DATABASE_URL")


def _url(url: str, **parts: str) -> str:
    from sqlalchemy.engine import make_url

    from bot.persistence.db import normalise_url

    return make_url(normalise_url(url)).set(**parts).render_as_string(hide_password=False)


async def _admin(url: str, *sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_url(url, drivername="postgresql"))
    try:
        for statement in sql:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A database of this test run's own on the server CONVENE_TEST_DATABASE_URL names, dropped at the
    end, whose every connection works in a schema of the same name (the database's search_path): the
    tests empty that schema (``tests.harness.empty_schema``), never ``public``, and parallel runs (other
    checkouts, helpers, xdist workers, CI) never reset each other's tables."""
    if not PG_URL:
        pytest.skip("CONVENE_TEST_DATABASE_URL is not set")
    name = f"convene_test_{os.getpid()}_{secrets.token_hex(4)}"
    asyncio.run(_admin(PG_URL, f'CREATE DATABASE "{name}"'))
    try:
        url = _url(PG_URL, database=name)
        asyncio.run(
            _admin(url, f'CREATE SCHEMA "{name}"', f'ALTER DATABASE "{name}" SET search_path TO "{name}"')
        )
        yield url
    finally:
        asyncio.run(_admin(PG_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'convene.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    from bot.persistence.db import make_engine
    from tests.harness import reset_schema

    eng = make_engine(db_url)
    await reset_schema(eng)
    yield eng
    # Every app made on this engine stops as a process would, whatever the test closed: a relay left
    # running keeps its worker identity (`bot.service.workers`) held in this process and, on
    # PostgreSQL, locked until its connection is garbage-collected, so a later test's relay would get
    # another name than a process restarting after a crash (each run has one PostgreSQL database).
    from tests.harness import OPEN

    for h in [h for h in OPEN if h.app.engine is eng]:
        await h.close()
    await eng.dispose()


@pytest.fixture
async def harness(engine: AsyncEngine) -> AsyncIterator[Harness]:
    from tests.harness import make_harness

    h = await make_harness(engine)
    yield h
    await h.close()
