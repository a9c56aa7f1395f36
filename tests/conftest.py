"""Shared fixtures: the database under test (SQLite always; PostgreSQL when
CONVENE_TEST_DATABASE_URL is set) and a whole app wired to in-memory chat ports."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.console.driver import ConsoleDriver, Person
from adapters.console.port import ConsolePort
from bot.app import App, build_app
from bot.config import AppConfig, parse_config
from bot.keys import KeyStore, MemoryKeyStore
from bot.persistence.db import make_engine, normalise_url
from bot.persistence.tables import Base
from bot.ports import FixedClock

PG_URL = os.environ.get("CONVENE_TEST_DATABASE_URL")


async def _admin(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(False))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A database of this test run's own on the server CONVENE_TEST_DATABASE_URL names, dropped at the
    end: parallel runs (other checkouts, helpers, CI) never reset each other's schema."""
    if not PG_URL:
        pytest.skip("CONVENE_TEST_DATABASE_URL is not set")
    name = f"convene_test_{os.getpid()}_{secrets.token_hex(4)}"
    asyncio.run(_admin(PG_URL, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(normalise_url(PG_URL)).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(PG_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'convene.db'}"
    return str(request.getfixturevalue("pg_url"))


async def reset_schema(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        else:
            await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(Base.metadata.create_all)


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(db_url)
    await reset_schema(eng)
    yield eng
    await eng.dispose()


def test_config(**overrides: Any) -> AppConfig:
    data: dict[str, Any] = {
        "console": {"conveners": ["maya", "ade"]},
        "rounds": {"sector_min_voters": 2},
    }
    data.update(overrides)
    return parse_config(data)


@dataclass
class Harness:
    """A whole app with in-memory chat ports for "slack" and "discord", driven as people would."""

    app: App
    driver: ConsoleDriver
    ports: dict[str, ConsolePort]
    clock: FixedClock
    keys: KeyStore

    def person(self, name: str, platform: str = "slack") -> Person:
        return self.driver.person(name, platform)

    def shown(self, platform: str | None = None) -> list[Any]:
        ports = [self.ports[platform]] if platform else list(self.ports.values())
        return [item for port in ports for item in port.shown]

    def public_text(self) -> str:
        return "\n".join(i.text for i in self.shown() if i.kind in ("post", "edit"))

    def privates(self, name: str) -> list[str]:
        return [i.text for i in self.shown() if i.kind == "private" and i.recipient == name.capitalize()]

    async def scalar(self, sql: str) -> Any:
        async with self.app.engine.connect() as conn:
            return (await conn.execute(text(sql))).scalar()

    async def close(self) -> None:
        """What a clean shutdown does: the ballot queue stops and the relay frees its worker identity."""
        await self.app.core.ingest.aclose()
        await self.app.relay.aclose()


async def make_harness(
    engine: AsyncEngine, *, keys: KeyStore | None = None, clock: FixedClock | None = None, **config: Any
) -> Harness:
    clock = clock or FixedClock(dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC))
    keys = keys or MemoryKeyStore()
    ports = ConsoleDriver.make_ports()
    app = await build_app(
        test_config(**config), dict(ports), keys=keys, clock=clock, engine=engine, migrate=False
    )
    app.core.rng = random.Random(1)
    driver = ConsoleDriver(app, ports, ["maya", "ade"])
    return Harness(app, driver, ports, clock, keys)


@pytest.fixture
async def harness(engine: AsyncEngine) -> AsyncIterator[Harness]:
    h = await make_harness(engine)
    yield h
    await h.close()
