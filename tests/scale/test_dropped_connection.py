"""The database server drops a pooled connection (a restart, a failover, an idle timeout): the next
command still works, on a fresh connection, instead of failing the person who clicked."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from bot.persistence.db import make_engine


@pytest.mark.postgres
async def test_a_connection_the_server_dropped_is_replaced_before_use(pg_url: str) -> None:
    engine = make_engine(pg_url, pool_size=1, max_overflow=0)
    admin = make_engine(pg_url)
    try:
        async with engine.connect() as conn:
            pid = (await conn.execute(text("select pg_backend_pid()"))).scalar()
        async with admin.connect() as conn:
            await conn.execute(text("select pg_terminate_backend(:pid)"), {"pid": pid})
            gone = text("select count(*) from pg_stat_activity where pid = :pid")
            while (await conn.execute(gone, {"pid": pid})).scalar():  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        async with engine.begin() as conn:  # the one pooled connection is dead: replaced, not failed
            assert (await conn.execute(text("select pg_backend_pid()"))).scalar() != pid
    finally:
        await engine.dispose()
        await admin.dispose()
