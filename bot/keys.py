"""Per-round pseudonym keys, kept outside the database and destroyed at close (crypto-shredding).

While a round is open the core must recognise an author again (quota, withdraw-own, one ballot per
person). It does so with HMAC(round key, user). Each round key is random, wrapped with AES-GCM under
a key-encryption key (KEK) from the environment or a key file, and stored as a file in ``key_dir``,
never in the database. Destroying the file at close makes the database alone unable to link anyone
to anything, and makes pseudonyms impossible to recompute from a member list.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import random
import secrets
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class KeyUnavailable(Exception):
    """The KEK is missing or wrong, or a round key cannot be read."""


class KeyStore(Protocol):
    def create(self, round_id: str) -> None: ...
    def get(self, round_id: str) -> bytes | None: ...
    def destroy(self, round_id: str) -> None: ...


def pseudonym(round_key: bytes, user_key: str) -> str:
    """128-bit keyed pseudonym, internal only: never shown, never logged."""
    return hmac.new(round_key, user_key.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def decode_kek(text: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyUnavailable("the key-encryption key is not valid base64") from None
    if len(raw) != 32:
        raise KeyUnavailable("the key-encryption key must be 32 bytes (base64 of 32 random bytes)")
    return raw


def new_kek() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def load_kek(env_name: str, key_file: str | None, *, create_file: bool = False) -> bytes:
    """From the environment variable, else the key file (created with mode 0600 if asked)."""
    value = os.environ.get(env_name)
    if value:
        return decode_kek(value)
    if key_file:
        path = Path(key_file)
        if not path.exists() and create_file:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(new_kek() + "\n")
        try:
            return decode_kek(path.read_text())
        except OSError as err:
            raise KeyUnavailable(f"cannot read the key file {path} ({err.strerror})") from None
    raise KeyUnavailable(f"no key-encryption key: set {env_name} or anonymity.kek_file")


class FileKeyStore:
    """Wrapped round keys as files under ``directory``."""

    def __init__(self, directory: str | os.PathLike[str], kek: bytes) -> None:
        self.dir = Path(directory)
        self._aead = AESGCM(kek)

    def _path(self, round_id: str) -> Path:
        if not round_id.isalnum():
            raise ValueError("bad round id")
        return self.dir / f"{round_id}.key"

    def create(self, round_id: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        nonce = secrets.token_bytes(12)
        wrapped = nonce + self._aead.encrypt(nonce, secrets.token_bytes(32), round_id.encode())
        path = self._path(round_id)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(wrapped)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)

    def get(self, round_id: str) -> bytes | None:
        path = self._path(round_id)
        try:
            wrapped = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return self._aead.decrypt(wrapped[:12], wrapped[12:], round_id.encode())
        except InvalidTag:
            raise KeyUnavailable("a round key does not open with this key-encryption key") from None

    def destroy(self, round_id: str) -> None:
        path = self._path(round_id)
        try:
            size = path.stat().st_size
            with path.open("r+b") as fh:  # overwrite before unlinking, for what it is worth on this disk
                fh.write(secrets.token_bytes(size))
                fh.flush()
                os.fsync(fh.fileno())
            path.unlink()
        except FileNotFoundError:
            pass


class MemoryKeyStore:
    """For tests and throwaway demos: keys die with the process. ``rng`` draws the keys instead of
    the system's generator, for a demo whose transcript must be the same every run."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._keys: dict[str, bytes] = {}
        self._rng = rng

    def create(self, round_id: str) -> None:
        self._keys[round_id] = self._rng.randbytes(32) if self._rng else secrets.token_bytes(32)

    def get(self, round_id: str) -> bytes | None:
        return self._keys.get(round_id)

    def destroy(self, round_id: str) -> None:
        self._keys.pop(round_id, None)
