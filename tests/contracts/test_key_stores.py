"""One contract for every key store (file, memory, Vault): what the core relies on when it makes,
reads and shreds round keys, on one host or on many."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.keys import KeyStoreUnreachable, KeyUnavailable
from bot.persistence.tables import Base
from tests.contracts.key_backends import KeyBackend, key_forms
from tests.core import story
from tests.harness import make_harness


class TestKeyStore:
    def test_a_created_key_is_read_back_and_gone_once_destroyed(self, key_backend: KeyBackend) -> None:
        store = key_backend.client()
        assert store.get("r1") is None
        store.create("r1")
        key = store.get("r1")
        assert isinstance(key, bytes)
        assert len(key) == 32
        assert store.get("r1") == key
        store.destroy("r1")
        assert store.get("r1") is None
        store.destroy("r1")  # twice (a retried close) is fine
        assert store.get("r1") is None

    def test_each_round_has_a_key_of_its_own(self, key_backend: KeyBackend) -> None:
        store = key_backend.client()
        for rid in ("r1", "r2", "r3"):
            store.create(rid)
        keys = {store.get(rid) for rid in ("r1", "r2", "r3")}
        assert len(keys) == 3
        store.destroy("r2")
        assert store.get("r2") is None
        assert store.get("r1") in keys
        assert store.get("r3") in keys

    def test_creating_again_keeps_the_key_pseudonyms_were_made_with(self, key_backend: KeyBackend) -> None:
        store = key_backend.client()
        store.create("r1")
        key = store.get("r1")
        store.create("r1")  # a retried transaction, or a second worker
        assert store.get("r1") == key

    def test_a_round_id_that_could_leave_the_store_is_refused(self, key_backend: KeyBackend) -> None:
        store = key_backend.client()
        for bad in ("../kek", "a/b", "", "r1.key"):
            with pytest.raises(ValueError):
                store.create(bad)

    def test_keys_survive_a_restart(self, key_backend: KeyBackend) -> None:
        before = key_backend.client()
        before.create("r1")
        key = before.get("r1")
        after = key_backend.client()  # the worker restarted: a new instance on the same backing
        if key_backend.shared:
            assert after.get("r1") == key
        else:
            assert key_backend.not_shared_because
            assert after.get("r1") is None

    def test_two_hosts_read_one_key_and_a_shred_on_one_reaches_the_other(
        self, key_backend: KeyBackend
    ) -> None:
        host_a, host_b = key_backend.client(), key_backend.client()
        host_a.create("r1")
        key = host_a.get("r1")
        if not key_backend.shared:
            assert key_backend.not_shared_because
            assert host_b.get("r1") is None
            return
        assert host_b.get("r1") == key
        # Both create the same round's key (two workers racing): one key wins, for both.
        host_b.create("r2")
        host_a.create("r2")
        assert host_a.get("r2") == host_b.get("r2") is not None
        # The round closes on host B: host A can no longer read its key.
        host_b.destroy("r1")
        assert host_a.get("r1") is None
        assert host_a.get("r2") is not None

    def test_a_wrong_secret_raises_key_unavailable(self, key_backend: KeyBackend) -> None:
        if key_backend.wrong_secret is None:
            pytest.skip(f"{key_backend.name}: {key_backend.no_secret_because}")
        store = key_backend.client()
        store.create("r1")
        wrong = key_backend.wrong_secret()
        with pytest.raises(KeyUnavailable) as err:
            wrong.get("r1")
        assert not any(s in str(err.value).encode() for s in key_backend.secrets)
        assert store.get("r1") is not None  # nothing was spoilt for the right secret

    def test_an_unreachable_store_says_so_and_never_claims_a_key_is_gone(
        self, key_backend: KeyBackend
    ) -> None:
        if key_backend.unreachable is None:
            pytest.skip(f"{key_backend.name}: {key_backend.always_reachable_because}")
        store = key_backend.client()
        store.create("r1")
        with key_backend.unreachable():
            with pytest.raises(KeyStoreUnreachable):
                store.get("r1")
            with pytest.raises(KeyStoreUnreachable):
                store.destroy("r1")
            assert isinstance(KeyStoreUnreachable("x"), OSError)  # the core answers "try again"
        assert store.get("r1") is not None

    def test_a_destroyed_key_is_gone_from_the_backing_not_just_hidden(self, key_backend: KeyBackend) -> None:
        store = key_backend.client()
        store.create("r1")
        store.create("r2")
        key = store.get("r1")
        assert key is not None
        held = len(key_backend.backing())
        store.destroy("r1")
        left = key_backend.backing()
        assert len(left) == held - 1
        assert not any(form in blob for blob in left for form in key_forms(key))

    async def test_nothing_key_like_is_written_to_the_database(
        self, key_backend: KeyBackend, engine: AsyncEngine, tmp_path: Path
    ) -> None:
        store = key_backend.client()
        h = await make_harness(engine, keys=store)
        try:
            rid = await story.to_vote(h)
            key = store.get(rid)
            assert key is not None
            for name, _p, _s in story.PEOPLE:
                await story.vote(h, name, 1, "Agree")
            await h.driver.settle()
            secrets = list(key_forms(key)) + [
                form for s in key_backend.secrets for form in (s, *key_forms(s))
            ]
            stored = await _everything_in(engine)
            found = [s for s in secrets if any(s in blob for blob in stored)]
            assert not found
        finally:
            await h.app.core.ingest.aclose()


async def _everything_in(engine: AsyncEngine) -> list[bytes]:
    """Every value in every table as bytes, and for SQLite the database file and its WAL as well."""
    blobs: list[bytes] = []
    async with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in (await conn.execute(select(table))).all():
                for value in row:
                    if isinstance(value, bytes):
                        blobs.append(value)
                    elif value is not None:
                        blobs.append(str(value).encode())
    if engine.dialect.name == "sqlite" and engine.url.database:
        for path in (Path(engine.url.database), Path(engine.url.database + "-wal")):
            if path.exists():
                blobs.append(path.read_bytes())
    return blobs
