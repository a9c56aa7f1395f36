"""Two workers on two hosts, one database (issue 13 item 5): with a shared key store a round started
on one worker takes contributions on the other, and cancelling it on one shreds the key for both;
with a key directory per host, the second worker refuses everyone."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.keys import FileKeyStore, KeyStore, VaultKeyStore, decode_kek, new_kek
from tests.core import story
from tests.harness import make_harness
from tests.platform_fakes.vault import FakeVault


@contextlib.contextmanager
def two_hosts(kind: str, tmp: Path) -> Iterator[Callable[[str], KeyStore]]:
    """A key-store client per host, on the backing ``kind`` names."""
    kek = decode_kek(new_kek())  # the same KEK everywhere: what differs is where the keys are
    if kind == "vault":
        with FakeVault() as vault:
            yield lambda _host: VaultKeyStore(vault.url, lambda: vault.token)
    elif kind == "shared volume":
        yield lambda _host: FileKeyStore(tmp / "volume" / "keys", kek)
    else:
        yield lambda host: FileKeyStore(tmp / host / "keys", kek)


@pytest.mark.parametrize("kind", ["vault", "shared volume", "a disk per host"])
async def test_a_round_started_on_one_host_works_on_the_other_and_is_shredded_for_both(
    kind: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    with two_hosts(kind, tmp_path) as client:
        a = await make_harness(engine, keys=client("host-a"))
        b = await make_harness(engine, keys=client("host-b"))
        b.driver._request = 1_000_000  # request ids count per process; two processes never share one
        try:
            rid = await story.start(a)
            await story.link_discord(b)
            await story.join_all(b)
            if kind == "a disk per host":  # issue 13: host B cannot read host A's key
                form = await b.driver.command(b.driver.people["raj"], "contribute")
                assert form is None
                refusal = b.app.core.prompts.render("errors/round_key_unavailable", {})
                assert b.privates("raj")[-1] == refusal
                assert b.keys.get(rid) is None
                return
            await story.contribute_all(b)  # each needs the round key (quota, withdraw-own)
            assert await b.scalar("select count(*) from ideas") == sum(len(t) for t in story.IDEAS.values())
            assert b.keys.get(rid) == a.keys.get(rid) is not None
            await a.driver.command(a.person("maya"), "cancel")
            assert await a.scalar("select phase from rounds") == "cancelled"
            assert a.keys.get(rid) is None
            assert b.keys.get(rid) is None  # shredded on A, gone for B's store too
            # ...and from B's memory by B's next scheduler pass, though B never saw the cancel.
            assert rid in b.app.core.services.keys.cached()
            await b.app.scheduler.run_once()
            assert rid not in b.app.core.services.keys.cached()
        finally:
            await a.app.core.ingest.aclose()
            await b.app.core.ingest.aclose()
