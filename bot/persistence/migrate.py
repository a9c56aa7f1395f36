"""Schema migrations with Alembic, run on our async engine.

Every ``convene run`` migrates at start, so N workers started at once on an empty database would
all create the same tables. On PostgreSQL the upgrade runs under a transaction-level advisory lock:
the first worker migrates, the others wait for its commit, then find the schema at head and do
nothing (DDL is transactional there, so a worker killed mid-way leaves no half schema). SQLite
needs no lock: our transactions begin IMMEDIATE, so the upgrade holds the write lock throughout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# pg_advisory_xact_lock(key): one 64-bit key for "the schema is being migrated" ("convene" + 1).
MIGRATION_LOCK = 0x636F6E76656E6501


def alembic_config(connection: Any = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    def run(sync_conn: Any) -> None:
        command.upgrade(alembic_config(sync_conn), revision)

    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Held until this transaction ends: a second worker waits here, then sees head.
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        await conn.run_sync(run)


async def current_revision(engine: AsyncEngine) -> str | None:
    def read(sync_conn: Any) -> str | None:
        return MigrationContext.configure(sync_conn).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(read)
