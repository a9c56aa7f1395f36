"""Several workers started at once on an empty database all come up, on one schema."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from bot.persistence.db import make_engine
from bot.persistence.migrate import current_revision, upgrade
from tests.harness import empty_schema

pytestmark = pytest.mark.postgres


async def test_workers_started_at_once_on_an_empty_postgres_database_all_migrate_it(pg_url: str) -> None:
    admin = make_engine(pg_url)
    await empty_schema(admin)  # an empty database, as a new deployment has
    engines = [make_engine(pg_url) for _ in range(6)]  # six workers, each with its own connections
    try:
        async with asyncio.timeout(60):  # without the lock, the upgrades collide or wait on each other
            results = await asyncio.gather(*(upgrade(e) for e in engines), return_exceptions=True)
        assert [r for r in results if isinstance(r, BaseException)] == [], "a worker failed to start"
        heads = {await current_revision(e) for e in engines}
        assert len(heads) == 1
        assert None not in heads
        async with admin.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM alembic_version")) == 1
            assert await conn.scalar(text("SELECT count(*) FROM rounds")) == 0
        await upgrade(engines[0])  # a restart later finds the schema at head and changes nothing
    finally:
        for e in engines:
            await e.dispose()
        await admin.dispose()
