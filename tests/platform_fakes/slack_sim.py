"""Slack's side of HTTP mode: POST signed requests to an app served on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, NamedTuple

import aiohttp
from aiohttp import web

from tests.platform_fakes.slack_payloads import SlackInbound


class SimResponse(NamedTuple):
    """What the app answered; unpacks as ``status, headers, body``."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


class SlackClientSim:
    """Plays Slack delivering requests to the app's HTTP endpoint (e.g. ``http://127.0.0.1:PORT/slack/events``)."""

    def __init__(self, app_url: str, signing_secret: str, *, timeout: float = 10.0) -> None:
        self.app_url = app_url
        self.signing_secret = signing_secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SlackClientSim:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(
        self,
        request: SlackInbound,
        *,
        timestamp: int | None = None,
        signing_secret: str | None = None,
        headers: Mapping[str, str | None] | None = None,
        body: bytes | None = None,
    ) -> SimResponse:
        """Sign and POST `request`. Tampering hooks: a different `signing_secret` or `timestamp`,
        `headers` overrides (a ``None`` value removes the header), or a replacement `body` sent with
        the signature of the original body."""
        final: dict[str, str] = request.headers(signing_secret or self.signing_secret, timestamp)
        for key, value in (headers or {}).items():
            if value is None:
                final.pop(key, None)
            else:
                final[key] = value
        return await self.post(request.body if body is None else body, final)

    async def post(self, body: bytes, headers: Mapping[str, str]) -> SimResponse:
        """POST raw bytes with exactly these headers."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        async with self._session.post(self.app_url, data=body, headers=dict(headers)) as resp:
            return SimResponse(resp.status, dict(resp.headers), await resp.read())


@asynccontextmanager
async def serve_aiohttp_app(app: web.Application, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve an aiohttp app (e.g. ``bolt_app.web_app()``) on an ephemeral port; yields ``http://host:port``."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()
