"""Per-round pseudonym keys, kept outside the database and destroyed at close (crypto-shredding).

While a round is open the core must recognise an author again (quota, withdraw-own, one ballot per
person). It does so with HMAC(round key, user). Each round key is random and lives in a key store,
never in the database; destroying it at close makes the database alone unable to link anyone to
anything, and makes pseudonyms impossible to recompute from a member list.

Two backends (``anonymity.backend``):

* ``file``: `FileKeyStore`, each key AES-GCM-wrapped under a key-encryption key (KEK) from the
  environment or a key file, one file per round in ``key_dir``. One host, or several sharing
  ``key_dir`` on a volume and the same KEK.
* ``vault``: `VaultKeyStore`, each key in HashiCorp Vault's KV v2 engine: every worker on every host
  reads the same key, no KEK sits on any host, each read is in Vault's audit log, and destroying a
  key removes every version of it for all workers at once.

`MemoryKeyStore` is for tests and the demo. Every store keeps one rule: ``create`` never replaces a
key that exists (pseudonyms already made with it would stop matching).
"""

from __future__ import annotations

import base64
import binascii
import errno
import functools
import hashlib
import hmac
import os
import random
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32


class KeyUnavailable(Exception):
    """The KEK is missing or wrong, the store refused our credentials, or a round key cannot be read."""


class KeyStoreUnreachable(ConnectionError):
    """The store cannot be reached right now (network, a sealed or overloaded Vault): try again later.
    An OSError, so the core answers "try again" and loses nothing."""


class KeyStore(Protocol):
    def create(self, round_id: str) -> None:
        """A new random key for ``round_id``; if one exists already, it is kept."""
        ...

    def get(self, round_id: str) -> bytes | None:
        """The round's key, or None once destroyed (or never created)."""
        ...

    def destroy(self, round_id: str) -> None:
        """Gone for good, for every instance of the store; destroying twice is fine."""
        ...


def pseudonym(round_key: bytes, user_key: str) -> str:
    """128-bit keyed pseudonym, internal only: never shown, never logged."""
    return hmac.new(round_key, user_key.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def decode_kek(text: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyUnavailable("the key-encryption key is not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise KeyUnavailable("the key-encryption key must be 32 bytes (base64 of 32 random bytes)")
    return raw


def new_kek() -> str:
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


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


def _check_round_id(round_id: str) -> str:
    if not round_id.isalnum():
        raise ValueError("bad round id")
    return round_id


class FileKeyStore:
    """Wrapped round keys as files under ``directory``. Several hosts may share the directory (a
    network volume) if they share the KEK too; `check` refuses a KEK that does not open the keys."""

    def __init__(self, directory: str | os.PathLike[str], kek: bytes) -> None:
        self.dir = Path(directory)
        self._kek = kek

    @functools.cached_property
    def _aead(self) -> AESGCM:
        # Imported at the first key used, not at start: OpenSSL's bindings are ~8 MiB of a worker
        # that has not opened a round key yet.
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        return AESGCM(self._kek)

    def _path(self, round_id: str) -> Path:
        return self.dir / f"{_check_round_id(round_id)}.key"

    def create(self, round_id: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        nonce = secrets.token_bytes(12)
        wrapped = nonce + self._aead.encrypt(nonce, secrets.token_bytes(KEY_BYTES), round_id.encode())
        path = self._path(round_id)
        # A name of its own per writer: two hosts creating at once never write into one file.
        tmp = self.dir / f".{round_id}.{secrets.token_hex(8)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(wrapped)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)  # atomic, and refuses to replace a key that exists (NFS too)
            except FileExistsError:
                pass
            except OSError as err:
                if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                    raise
                if not path.exists():  # a volume without hard links
                    tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)

    def get(self, round_id: str) -> bytes | None:
        path = self._path(round_id)
        try:
            wrapped = path.read_bytes()
        except FileNotFoundError:
            return None
        from cryptography.exceptions import InvalidTag

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

    def check(self) -> None:
        """At start: a KEK that does not open the keys already here (another host's, an old one) is
        refused now rather than at the first click."""
        for path in sorted(self.dir.glob("*.key"))[:1]:
            self.get(path.stem)


class MemoryKeyStore:
    """For tests and throwaway demos: keys die with the process. ``rng`` draws the keys instead of
    the system's generator, for a demo whose transcript must be the same every run."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._keys: dict[str, bytes] = {}
        self._rng = rng

    def create(self, round_id: str) -> None:
        key = self._rng.randbytes(KEY_BYTES) if self._rng else secrets.token_bytes(KEY_BYTES)
        self._keys.setdefault(_check_round_id(round_id), key)

    def get(self, round_id: str) -> bytes | None:
        return self._keys.get(_check_round_id(round_id))

    def destroy(self, round_id: str) -> None:
        self._keys.pop(_check_round_id(round_id), None)


class VaultKeyStore:
    """Round keys in HashiCorp Vault's KV v2 secrets engine, at ``<mount>/data/<path>/<round id>``.

    * ``create`` writes with check-and-set 0: two workers creating one round's key never replace
      each other's, and the first key stays.
    * ``destroy`` deletes the metadata and every version. KV v2's plain delete is a soft delete
      that ``undelete`` reverses; that would not be a shredding.
    * Vault refusing the token (403) is `KeyUnavailable`; Vault unreachable, sealed or failing (5xx,
      429) is `KeyStoreUnreachable`, which the core answers with "try again".
    * The token is read at every call (``token()``), so a token file that Vault Agent rewrites works.

    Calls are blocking (hvac uses requests): the core reads a key once per round per process and
    caches it, and creates and destroys one per round, so the event loop waits a few milliseconds
    at those moments only.
    """

    def __init__(
        self,
        address: str,
        token: Callable[[], str],
        *,
        mount: str = "secret",
        path: str = "convene/round-keys",
        namespace: str | None = None,
        verify: bool | str = True,
        timeout: float = 5.0,
    ) -> None:
        try:
            import hvac
        except ImportError:
            raise KeyUnavailable(
                "anonymity.backend vault needs the vault extra: pip install 'convene[vault]'"
            ) from None
        self.address = address.rstrip("/")
        self.mount = mount.strip("/")
        self.path = path.strip("/")
        self._token = token
        self._client = hvac.Client(url=self.address, namespace=namespace, verify=verify, timeout=timeout)

    def _secret(self, round_id: str) -> str:
        return f"{self.path}/{_check_round_id(round_id)}"

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        """Runs one Vault call, mapping its failures onto ours (never with a key or token in them)."""
        import hvac.exceptions as vex
        import requests

        self._client.token = self._token()
        try:
            return fn()
        except (vex.Forbidden, vex.Unauthorized):
            raise KeyUnavailable(
                f"Vault refused the token for {what} (check its policy and expiry)"
            ) from None
        except (vex.VaultDown, vex.InternalServerError, vex.BadGateway, vex.RateLimitExceeded) as err:
            raise KeyStoreUnreachable(f"Vault could not {what} now ({type(err).__name__})") from None
        except (vex.InvalidPath, vex.InvalidRequest):
            raise  # "no such key" and "exists already": the caller decides
        except vex.VaultError as err:
            raise KeyUnavailable(f"Vault answered {type(err).__name__} to {what}") from None
        except requests.RequestException as err:
            raise KeyStoreUnreachable(
                f"cannot reach Vault at {self.address} to {what} ({type(err).__name__})"
            ) from None

    def create(self, round_id: str) -> None:
        import hvac.exceptions as vex

        secret = {"key": base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()}
        kv = self._client.secrets.kv.v2
        try:
            self._call(
                "store a round key",
                lambda: kv.create_or_update_secret(
                    self._secret(round_id), secret=secret, cas=0, mount_point=self.mount
                ),
            )
        except vex.InvalidRequest as err:
            if "check-and-set" not in str(err):
                raise KeyUnavailable(f"Vault rejected a round key ({err.errors})") from None
            # The key exists already (another worker, a retry): it is kept, as the contract says.

    def get(self, round_id: str) -> bytes | None:
        import hvac.exceptions as vex

        kv = self._client.secrets.kv.v2
        try:
            answer = self._call(
                "read a round key",
                lambda: kv.read_secret_version(
                    self._secret(round_id), mount_point=self.mount, raise_on_deleted_version=True
                ),
            )
        except vex.InvalidPath:
            return None
        try:
            key = base64.b64decode(answer["data"]["data"]["key"], validate=True)
        except (KeyError, TypeError, binascii.Error, ValueError):
            raise KeyUnavailable("a round key in Vault is not one convene wrote") from None
        if len(key) != KEY_BYTES:
            raise KeyUnavailable("a round key in Vault is not one convene wrote")
        return key

    def destroy(self, round_id: str) -> None:
        import hvac.exceptions as vex

        kv = self._client.secrets.kv.v2
        try:
            self._call(
                "destroy a round key",
                lambda: kv.delete_metadata_and_all_versions(self._secret(round_id), mount_point=self.mount),
            )
        except vex.InvalidPath:
            pass

    def check(self) -> None:
        """At start: Vault is reachable and takes the token (a clear refusal now, not at the first click)."""
        self._call("look up its token", self._client.auth.token.lookup_self)
