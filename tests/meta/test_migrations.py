"""Migrations keep what a database holds: upgrading one with rounds, rosters, ideas and timers loses
no row (on SQLite a rebuilt `rounds` table would cascade its DROP into every child table)."""

from __future__ import annotations

from sqlalchemy import text

from bot.persistence.db import make_engine
from bot.persistence.migrate import upgrade
from bot.persistence.tables import Base
from tests.harness import reset_schema

CHILDREN = ("participants", "ideas", "ballots", "timers", "round_conversations")


async def test_upgrading_a_database_with_rows_keeps_every_row(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        await reset_schema(engine)
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)
        await upgrade(engine, "0001")
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "insert into rounds (id, title, purpose, template, language, phase, version, join_code,"
                    " conveners, settings, key_destroyed)"
                    " values ('r1', 't', 'p', 'standard', 'en', 'closed', 1, null, '[]', '{}', false)"
                )
            )
            for sql in (
                "insert into participants (id, round_id, platform, workspace_id, user_id)"
                " values ('p1', 'r1', 'slack', 'T1', 'U1')",
                "insert into ideas (id, round_id, text, status) values ('i1', 'r1', 'x', 'released')",
                "insert into ballots (id, round_id, idea_number, voter_key) values ('b1', 'r1', 1, 'v')",
                "insert into timers (id, round_id, kind, phase, due_at, status)"
                " values ('t1', 'r1', 'phase_deadline', 'vote', '2026-01-01 00:00:00', 'done')",
                "insert into round_conversations (id, round_id, platform, workspace_id, channel_id)"
                " values ('c1', 'r1', 'slack', 'T1', 'C1')",
            ):
                await conn.execute(text(sql))
        await upgrade(engine)
        async with engine.connect() as conn:
            for table in ("rounds", *CHILDREN):
                assert (await conn.execute(text(f"select count(*) from {table}"))).scalar() == 1, table
            since = (await conn.execute(text("select phase_since from rounds"))).scalar()
            assert since is not None  # retention counts from the upgrade for older rounds
    finally:
        await engine.dispose()
