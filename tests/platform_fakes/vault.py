"""A local fake of HashiCorp Vault (token auth + the KV v2 secrets engine) for testing VaultKeyStore.

A stdlib ``ThreadingHTTPServer`` on 127.0.0.1 in a thread of its own: hvac is a blocking client
(requests), so the server must not share the test's event loop.

What it does as Vault does (paths and bodies from Vault's HTTP API docs for KV v2 and token auth):

* ``X-Vault-Token`` on every request; an unknown or revoked token, or a path outside the token's
  policy (a list of path prefixes), is ``403 {"errors": ["permission denied"]}``;
* KV v2 under each mount in ``mounts``: ``POST|PUT /v1/<mount>/data/<path>`` writes a new version
  (``options.cas``: 0 = only if absent, n = only if the current version is n, else
  ``400 check-and-set parameter did not match the current version``); ``GET`` reads the latest (or
  ``?version=``) and answers 404 for a soft-deleted or destroyed version; ``DELETE
  /v1/<mount>/data/<path>`` is the soft delete (the data stays, ``undelete`` brings it back);
  ``POST /v1/<mount>/undelete/<path>``; ``DELETE /v1/<mount>/metadata/<path>`` removes every
  version and the metadata for good;
* ``GET /v1/auth/token/lookup-self``; ``X-Vault-Namespace`` is recorded and, when ``namespace`` is
  set, required;
* faults: ``sealed`` (every request 503 "Vault is sealed"), ``fail_next(status, times)``.

``stored()`` shows every byte string Vault holds (soft-deleted versions too), so a test can check
that a destroyed key is gone from storage, not just hidden.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

DEFAULT_TOKEN = "hvs.fake-convene-token"


@dataclass
class VaultCall:
    method: str
    path: str
    token: str | None
    namespace: str | None
    body: Any
    status: int = 0


@dataclass
class _Version:
    data: dict[str, Any] | None  # None once destroyed
    deleted: bool = False


@dataclass
class _Secret:
    versions: list[_Version] = field(default_factory=list)

    @property
    def current(self) -> int:
        return len(self.versions)


class FakeVault:
    """``with FakeVault() as vault:`` then ``VaultKeyStore(vault.url, lambda: vault.token, ...)``."""

    def __init__(self, *, mounts: tuple[str, ...] = ("secret",), namespace: str | None = None) -> None:
        self.mounts = set(mounts)
        self.namespace = namespace
        self.token = DEFAULT_TOKEN
        # token -> path prefixes it may touch ("" = everything), as a Vault policy would grant.
        self.policies: dict[str, list[str]] = {self.token: [""]}
        self.sealed = False
        self.calls: list[VaultCall] = []
        self._kv: dict[tuple[str, str], _Secret] = {}
        self._faults: list[list[int]] = []  # [status, remaining]
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -----------------------------------------------------------------------------------
    def start(self) -> FakeVault:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body = fake._answer(
                    self.command, self.path, dict(self.headers.items()), json.loads(raw) if raw else None
                )
                data = b"" if status == 204 else json.dumps(body).encode()
                self.send_response(status)
                if data:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_LIST = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-vault", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> FakeVault:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeVault is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # what tests look at --------------------------------------------------------------------------
    def stored(self) -> Iterator[bytes]:
        """Every value Vault keeps, in every version not destroyed (soft-deleted ones too)."""
        with self._lock:
            for secret in self._kv.values():
                for v in secret.versions:
                    if v.data is not None:
                        yield json.dumps(v.data).encode()

    def paths(self, mount: str = "secret") -> list[str]:
        with self._lock:
            return sorted(p for (m, p) in self._kv if m == mount)

    def revoke(self, token: str) -> None:
        self.policies.pop(token, None)

    def fail_next(self, status: int, times: int = 1) -> None:
        """The next ``times`` requests answer ``status`` (``{"errors": [...]}``)."""
        self._faults.append([status, times])

    # the API -------------------------------------------------------------------------------------
    def _answer(self, method: str, target: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        url = urlsplit(target)
        token = next((v for k, v in headers.items() if k.lower() == "x-vault-token"), None)
        namespace = next((v for k, v in headers.items() if k.lower() == "x-vault-namespace"), None)
        call = VaultCall(method, url.path, token, namespace, body)
        with self._lock:
            self.calls.append(call)
            status, answer = self._route(method, url.path, parse_qs(url.query), token, namespace, body)
        call.status = status
        return status, answer

    def _route(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        token: str | None,
        namespace: str | None,
        body: Any,
    ) -> tuple[int, Any]:
        if self._faults:
            fault = self._faults[0]
            fault[1] -= 1
            if fault[1] <= 0:
                self._faults.pop(0)
            return fault[0], {"errors": [f"fake failure {fault[0]}"]}
        if self.sealed:
            return 503, {"errors": ["Vault is sealed"]}
        if self.namespace is not None and namespace != self.namespace:
            return 404, {"errors": ["no handler for route"]}
        if not path.startswith("/v1/"):
            return 404, {"errors": []}
        rel = path[len("/v1/") :]
        if token is None or token not in self.policies:
            return 403, {"errors": ["permission denied"]}
        if rel == "auth/token/lookup-self" and method == "GET":
            return 200, {"data": {"policies": ["convene"], "ttl": 3600, "renewable": True}}
        if not any(rel.startswith(prefix) for prefix in self.policies[token]):
            return 403, {"errors": ["permission denied"]}
        m = re.fullmatch(r"([^/]+)/(data|metadata|undelete)/(.+)", rel)
        if m is None or m.group(1) not in self.mounts:
            return 404, {"errors": [f"no handler for route {rel!r}"]}
        mount, kind, name = m.groups()
        key = (mount, name)
        secret = self._kv.get(key)
        if kind == "data" and method in ("POST", "PUT"):
            return self._write(key, secret, body or {})
        if kind == "data" and method == "GET":
            version = int(query.get("version", ["0"])[0]) or (secret.current if secret else 0)
            if secret is None or not 1 <= version <= secret.current:
                return 404, {"errors": []}
            v = secret.versions[version - 1]
            if v.deleted or v.data is None:
                return 404, {"errors": []}
            return 200, {"data": {"data": v.data, "metadata": {"version": version, "deletion_time": ""}}}
        if kind == "data" and method == "DELETE":  # soft delete of the latest version
            if secret is not None and secret.versions:
                secret.versions[-1].deleted = True
            return 204, None
        if kind == "undelete" and method in ("POST", "PUT"):
            for n in (body or {}).get("versions", []):
                if secret is not None and 1 <= n <= secret.current:
                    secret.versions[n - 1].deleted = False
            return 204, None
        if kind == "metadata" and method == "DELETE":
            self._kv.pop(key, None)
            return 204, None
        if kind == "metadata" and method == "GET":
            if secret is None:
                return 404, {"errors": []}
            return 200, {"data": {"current_version": secret.current}}
        return 405, {"errors": ["unsupported operation"]}

    def _write(self, key: tuple[str, str], secret: _Secret | None, body: dict[str, Any]) -> tuple[int, Any]:
        data = body.get("data")
        if not isinstance(data, dict):
            return 400, {"errors": ["no data provided"]}
        cas = (body.get("options") or {}).get("cas")
        current = secret.current if secret else 0
        if cas is not None and int(cas) != current:
            return 400, {"errors": ["check-and-set parameter did not match the current version"]}
        if secret is None:
            secret = self._kv[key] = _Secret()
        secret.versions.append(_Version(dict(data)))
        return 200, {"data": {"version": secret.current, "deletion_time": "", "destroyed": False}}
