"""A worker on a migrated database starts without Alembic: `bot.persistence.schema` reads the
migrations' head from the version files and the database's stamp with one query."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import text

from bot.persistence.db import make_engine
from bot.persistence.migrate import alembic_config, upgrade
from bot.persistence.schema import is_current, script_heads
from bot.persistence.tables import Base
from tests.harness import reset_schema


def test_the_heads_read_from_the_files_are_alembics() -> None:
    assert script_heads() == frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def test_merge_revisions_and_annotations_are_read(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text('revision = "a"\ndown_revision = None\n')
    (tmp_path / "b.py").write_text("revision: str = 'b'\ndown_revision: str | None = 'a'\n")
    (tmp_path / "c.py").write_text("revision = 'c'\ndown_revision = 'a'\n")
    (tmp_path / "d.py").write_text('revision = "d"\ndown_revision = ("b", "c")\n')
    assert script_heads(tmp_path) == {"d"}


async def test_an_empty_database_is_not_current_and_a_migrated_one_is(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        await reset_schema(engine)
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)
            await conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        assert not await is_current(engine)
        await upgrade(engine, "0001")
        assert not await is_current(engine)
        await upgrade(engine)
        assert await is_current(engine)
    finally:
        await engine.dispose()


def test_starting_a_worker_imports_neither_alembic_nor_the_other_dialect() -> None:
    """What `convene run` imports before it knows the schema needs work (idle memory)."""
    code = (
        "import sys, adapters.cli, bot.app, adapters.discord.runner, adapters.slack.runner;"
        "print(sorted(m for m in ('alembic', 'mako', 'emoji', 'cryptography', 'numpy', 'matplotlib',"
        " 'sqlalchemy.dialects.postgresql', 'jinja2') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_worker_loads_jinja2_at_its_first_text_and_settles_its_heap() -> None:
    """Idle memory: Jinja2 comes with the first text rendered; after start-up what survived is
    frozen (short full collections) and glibc's free pages go back to the OS."""
    code = (
        "import gc, sys\n"
        "from bot.heap import release_free_memory, settle_startup_heap\n"
        "from bot.prompts import Prompts\n"
        "p = Prompts()\n"
        "print('jinja2' in sys.modules)\n"
        "print(p.render('errors/error', {'code': 'malformed_request', 'detail': ''}) != '')\n"
        "print('jinja2' in sys.modules)\n"
        "settle_startup_heap()\n"
        "print(gc.get_freeze_count() > 0)\n"
        "print(release_free_memory() == sys.platform.startswith('linux'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "True", "True", "True"]
