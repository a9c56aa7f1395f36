"""A whole app wired to in-memory chat ports (both simulated platforms), driven as people would:
what the story tests, the stories of the capabilities and the benchmarks build on."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.console.driver import ConsoleDriver, Person
from adapters.console.port import ConsolePort
from bot.app import App, build_app
from bot.config import AppConfig, parse_config
from bot.keys import KeyStore, MemoryKeyStore
from bot.persistence.tables import Base
from bot.ports import FixedClock


async def empty_schema(engine: AsyncEngine) -> None:
    """PostgreSQL: drop everything in the test run's own schema (``pg_url`` in tests/conftest.py sets
    it as the database's search_path) and make it again, empty, as a new deployment finds it."""
    async with engine.begin() as conn:
        schema = str(await conn.scalar(text("SHOW search_path")))
        if not schema.startswith("convene_test_"):
            raise RuntimeError(f"not a test run's own schema: {schema!r}")
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))


async def reset_schema(engine: AsyncEngine) -> None:
    if engine.dialect.name == "postgresql":
        await empty_schema(engine)
    async with engine.begin() as conn:
        if engine.dialect.name != "postgresql":
            await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(Base.metadata.create_all)


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
        OPEN[:] = [h for h in OPEN if h is not self]


OPEN: list[Harness] = []  # harnesses not closed yet: the engine fixture closes them


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
    h = Harness(app, driver, ports, clock, keys)
    OPEN.append(h)
    return h
