"""Whether the database is at the migrations' head, read without importing Alembic.

A worker started after ``convene db upgrade`` (or beside one that migrated) finds the schema
current and never loads Alembic and Mako (~10 MiB of a worker's idle memory); only a database that
needs migrating pays for them, in ``bot.persistence.migrate``.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

VERSIONS = Path(__file__).resolve().parent / "migrations" / "versions"

_ASSIGNED = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(.+)$", re.MULTILINE)
_QUOTED = re.compile(r"""["']([^"']+)["']""")


@functools.cache
def script_heads(versions: Path = VERSIONS) -> frozenset[str]:
    """The revisions no migration builds on: what ``alembic upgrade head`` ends at."""
    revisions: set[str] = set()
    below: set[str] = set()
    for path in versions.glob("*.py"):
        for name, value in _ASSIGNED.findall(path.read_text(encoding="utf-8")):
            found = _QUOTED.findall(value)
            (revisions if name == "revision" else below).update(found)
    return frozenset(revisions - below)


async def database_revisions(engine: AsyncEngine) -> frozenset[str]:
    """The revisions stamped in the database; none when it has never been migrated."""
    async with engine.connect() as conn:
        has_table = await conn.run_sync(lambda c: c.dialect.has_table(c, "alembic_version"))
        if not has_table:
            return frozenset()
        stamped = await conn.scalars(text("SELECT version_num FROM alembic_version"))
        return frozenset(str(r) for r in stamped)


async def is_current(engine: AsyncEngine) -> bool:
    heads = script_heads()
    return bool(heads) and await database_revisions(engine) == heads
