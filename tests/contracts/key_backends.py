"""Each key store behind the KeyStore port, with what the contract needs to look at.

``client()`` opens a new instance of the store on the same backing: what a restarted worker, or a
worker on a second host, gets. Where a backend truly differs, a field says so in words; the
contract asserts the declared behaviour, or (where there is nothing to assert) skips with that
reason, never silently.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bot.keys import FileKeyStore, KeyStore, MemoryKeyStore, VaultKeyStore, decode_kek, new_kek
from tests.platform_fakes.vault import FakeVault


@dataclass
class KeyBackend:
    name: str
    client: Callable[[], KeyStore]
    # Secrets that open the keys (KEK, token): never in the database.
    secrets: tuple[bytes, ...]
    # Everything the backing holds now (files, Vault's storage, a process's memory).
    backing: Callable[[], list[bytes]]
    # Keys outlive a restart, and every worker on every host reads the same key.
    shared: bool = True
    not_shared_because: str = ""
    # A client holding the wrong secret (another KEK, a revoked token); None: the store has none.
    wrong_secret: Callable[[], KeyStore] | None = None
    no_secret_because: str = ""
    # Makes the backing unreachable for a while (as a context manager); None: it cannot be.
    unreachable: Callable[[], contextlib.AbstractContextManager[None]] | None = None
    always_reachable_because: str = ""


def key_forms(key: bytes) -> list[bytes]:
    """Ways a key could be written down: raw, hex, base64 (standard and URL-safe, with or without
    padding)."""
    b64 = base64.b64encode(key)
    url = base64.urlsafe_b64encode(key)
    return [key, key.hex().encode(), key.hex().upper().encode(), b64, b64.rstrip(b"="), url, url.rstrip(b"=")]


@contextlib.contextmanager
def file_backend(tmp: Path) -> Iterator[KeyBackend]:
    directory = tmp / "keys"  # one directory shared by every client: a volume two hosts mount
    kek_text = new_kek()
    kek = decode_kek(kek_text)

    def backing() -> list[bytes]:
        return [p.read_bytes() for p in directory.rglob("*") if p.is_file()] if directory.exists() else []

    yield KeyBackend(
        "file",
        client=lambda: FileKeyStore(directory, kek),
        secrets=(kek, kek_text.encode()),
        backing=backing,
        wrong_secret=lambda: FileKeyStore(directory, decode_kek(new_kek())),
        always_reachable_because="a directory on this host (or a mounted volume) fails as its disk does",
    )


@contextlib.contextmanager
def memory_backend() -> Iterator[KeyBackend]:
    stores: list[MemoryKeyStore] = []

    def client() -> KeyStore:
        stores.append(MemoryKeyStore())
        return stores[-1]

    yield KeyBackend(
        "memory",
        client=client,
        secrets=(),
        backing=lambda: [k for s in stores for k in s._keys.values()],
        shared=False,
        not_shared_because="keys live in one process's memory and die with it (tests and the demo)",
        no_secret_because="nothing wraps the keys in memory",
        always_reachable_because="the process's own memory",
    )


@contextlib.contextmanager
def vault_backend() -> Iterator[KeyBackend]:
    with FakeVault() as vault:

        @contextlib.contextmanager
        def sealed() -> Iterator[None]:
            vault.sealed = True
            try:
                yield
            finally:
                vault.sealed = False

        def wrong() -> KeyStore:
            return VaultKeyStore(vault.url, lambda: "hvs.revoked-or-never-issued")

        yield KeyBackend(
            "vault",
            client=lambda: VaultKeyStore(vault.url, lambda: vault.token),
            secrets=(vault.token.encode(),),
            backing=lambda: list(vault.stored()),
            wrong_secret=wrong,
            unreachable=sealed,
        )


def open_backend(name: str, tmp: Path) -> contextlib.AbstractContextManager[KeyBackend]:
    if name == "file":
        return file_backend(tmp)
    if name == "memory":
        return memory_backend()
    return vault_backend()


BACKENDS = ("file", "memory", "vault")
