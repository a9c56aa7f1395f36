"""Whose token a Slack call goes out with: one bot token (the default), or, with ``slack.oauth``, the
token of each workspace that installed the app, kept in the database by slack_sdk's SQLAlchemy
installation store (tables ``slack_installations`` and ``slack_bots``, migration 0008).

`InstallationStore` is slack_sdk's async store with two additions: a short per-worker cache of what
it found (bolt asks on every request; ``slack.oauth.token_cache_seconds``, emptied at once on this
worker by a save or a delete), and hooks that tell the core when a workspace installs the app or
removes it. Other workers see a removal when their cache runs out; until then a post there fails with
``token_revoked``, which is permanent too."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import sqlalchemy as sa
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("convene.slack.oauth")

TeamHook = Callable[[str], Awaitable[None]]


class NotInstalled(Exception):
    """No bot token for this workspace: the app was never installed there, or was removed."""


class Tokens(Protocol):
    async def for_team(self, team_id: str) -> str:
        """The bot token to act in ``team_id`` with; raises `NotInstalled`."""
        ...

    def forget(self, team_id: str) -> None: ...


class OneToken:
    """Single-token mode: one workspace, one bot token, whatever the team asked about."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def for_team(self, team_id: str) -> str:
        return self.token

    def forget(self, team_id: str) -> None:
        return None


class InstallationStore(AsyncSQLAlchemyInstallationStore):
    """slack_sdk's async SQLAlchemy installation store on our engine, cached briefly (module doc),
    and the `Tokens` of OAuth mode."""

    def __init__(
        self,
        client_id: str,
        engine: AsyncEngine,
        *,
        ttl: float = 60.0,
        on_installed: TeamHook | None = None,
        on_removed: TeamHook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(client_id, engine, logger=log)
        self.ttl = ttl
        self.on_installed = on_installed
        self.on_removed = on_removed
        self.clock = clock
        self._cache: dict[tuple[Any, ...], tuple[float, Any]] = {}

    def _cached(self, key: tuple[Any, ...]) -> tuple[bool, Any]:
        hit = self._cache.get(key)
        if hit is not None and hit[0] > self.clock():
            return True, hit[1]
        return False, None

    def _keep(self, key: tuple[Any, ...], value: Any) -> Any:
        if value is not None and self.ttl > 0:  # a miss is not kept: an install shows at once
            self._cache[key] = (self.clock() + self.ttl, value)
        return value

    def forget(self, team_id: str | None = None) -> None:
        self._cache.clear()

    async def for_team(self, team_id: str) -> str:
        """The newest bot token installed in ``team_id`` (any enterprise), from the cache or the
        database."""
        key = ("token", team_id)
        found, token = self._cached(key)
        if not found:
            c = self.bots.c
            async with self.engine.connect() as conn:
                token = await conn.scalar(
                    sa.select(c.bot_token)
                    .where(c.client_id == self.client_id, c.team_id == team_id, c.bot_token.is_not(None))
                    .order_by(c.installed_at.desc())
                    .limit(1)
                )
            self._keep(key, token)
        if not token:
            raise NotInstalled(team_id)
        return str(token)

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        key = ("bot", enterprise_id, team_id, is_enterprise_install)
        found, bot = self._cached(key)
        if found:
            return bot  # type: ignore[no-any-return]
        bot = await super().async_find_bot(
            enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=is_enterprise_install
        )
        return self._keep(key, bot)  # type: ignore[no-any-return]

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        key = ("installation", enterprise_id, team_id, user_id, is_enterprise_install)
        found, inst = self._cached(key)
        if found:
            return inst  # type: ignore[no-any-return]
        inst = await super().async_find_installation(
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
            is_enterprise_install=is_enterprise_install,
        )
        return self._keep(key, inst)  # type: ignore[no-any-return]

    async def async_save(self, installation: Installation) -> None:
        await super().async_save(installation)
        self.forget()
        log.info("slack: the app was installed in a workspace")
        if self.on_installed is not None and installation.team_id:
            await self.on_installed(installation.team_id)

    async def remove(self, enterprise_id: str | None, team_id: str) -> None:
        """The workspace removed the app (app_uninstalled, or its bot token revoked): its installation
        and bot rows are deleted, and the core stops posting there."""
        await self.async_delete_all(enterprise_id=enterprise_id, team_id=team_id)
        self.forget()
        if self.on_removed is not None:
            await self.on_removed(team_id)
