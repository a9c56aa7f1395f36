"""Installation in many workspaces (``slack.oauth``): Slack's OAuth v2 flow through bolt, slack_sdk's
SQLAlchemy installation and OAuth state stores on our database, and what happens when a workspace
removes the app.

* ``GET slack.oauth.install_path``: a page with "Add to Slack" (bolt's), and a state both in a cookie
  and in ``slack_oauth_states``; ``GET slack.oauth.redirect_path``: Slack sends the installer back with
  a code, which ``oauth.v2.access`` turns into the workspace's bot token, saved in ``slack_bots`` and
  ``slack_installations`` (`oauth_store.InstallationStore`).
* Every signed request is authorized by its team: bolt finds the installation (its bot token), and a
  workspace with none gets bolt's 401. The adapter and the relay take each workspace's own token
  (`oauth_store.Tokens`): a post in a linked channel goes out with the token of the channel's team.
* ``app_uninstalled`` and ``tokens_revoked`` (for the bot) delete the workspace's installation and
  mark its linked conversations gone (`bot.service.tenancy`): nothing more is posted there, what was
  waiting fails at once with one log line, and no convener hears of a stalled channel.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.faults import fault
from bot.config import ConfigError, SlackConfig
from bot.refs import Platform
from bot.service.core import Convene

from .oauth_store import InstallationStore

log = logging.getLogger("convene.slack.oauth")

MANIFEST = Path(__file__).resolve().parent / "manifest.yaml"


def manifest_scopes(path: Path = MANIFEST) -> list[str]:
    """The bot scopes the app manifest asks for: what an installation grants."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    scopes = data["oauth_config"]["scopes"]["bot"]
    return [str(s) for s in scopes]


def make_store(config: SlackConfig, client_id: str, engine: AsyncEngine, core: Convene) -> InstallationStore:
    async def installed(team: str) -> None:
        await core.workspace_installed(Platform.SLACK, team)

    async def removed(team: str) -> None:
        await core.workspace_removed(Platform.SLACK, team)

    return InstallationStore(
        client_id,
        engine,
        ttl=config.oauth.token_cache_seconds,
        on_installed=installed,
        on_removed=removed,
    )


def oauth_settings(
    config: SlackConfig, env: Mapping[str, str], store: InstallationStore, engine: AsyncEngine
) -> AsyncOAuthSettings:
    o = config.oauth
    client_id = _secret(env, o.client_id_env, "the app's client id")
    client_secret = _secret(env, o.client_secret_env, "the app's client secret")
    return AsyncOAuthSettings(
        client_id=client_id,
        client_secret=client_secret,
        scopes=o.scopes if o.scopes is not None else manifest_scopes(),
        install_path=o.install_path,
        redirect_uri_path=o.redirect_path,
        redirect_uri=o.redirect_uri,
        installation_store=store,
        installation_store_bot_only=True,
        state_store=AsyncSQLAlchemyOAuthStateStore(o.state_expiration_seconds, engine, logger=log),
        state_expiration_seconds=o.state_expiration_seconds,
        logger=log,
    )


def _secret(env: Mapping[str, str], name: str, what: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"slack: the environment variable {name} ({what}) is not set")
    return value


def authorize(settings: AsyncOAuthSettings, client: AsyncWebClient) -> AsyncInstallationStoreAuthorize:
    """Bolt's authorization by installation, with its auth.test answers kept per token (a click then
    costs no Web API call before it is acknowledged)."""
    store = settings.installation_store
    assert store is not None
    return AsyncInstallationStoreAuthorize(
        installation_store=store,
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        logger=log,
        bot_only=True,
        cache_enabled=True,
        client=client,
    )


def register_uninstall(bolt: AsyncApp, store: InstallationStore) -> None:
    """``app_uninstalled`` and ``tokens_revoked`` (bolt runs these without an auth.test, whose token is
    gone): the workspace's installation is deleted and its conversations marked gone. A workspace
    whose only user tokens were revoked keeps its bot: nothing changes."""

    handlers = bolt.convene_handlers  # type: ignore[attr-defined]  # counts work in flight

    async def remove(body: Mapping[str, Any]) -> None:
        team = body.get("team_id")
        enterprise = body.get("enterprise_id")
        if not isinstance(team, str) or not team:
            log.info("refused an uninstall event with no team id")
            return
        handlers.enter()
        try:
            await store.remove(enterprise if isinstance(enterprise, str) and enterprise else None, team)
        except Exception as err:
            log.error("slack: removing an installation failed: %s", fault(err))
        finally:
            handlers.leave()

    @bolt.event("app_uninstalled")
    async def on_uninstalled(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        await remove(body)

    @bolt.event("tokens_revoked")
    async def on_revoked(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        tokens = body.get("event", {}).get("tokens") if isinstance(body.get("event"), dict) else None
        bots = tokens.get("bot") if isinstance(tokens, dict) else None
        if bots:
            await remove(body)


def add_routes(app: web.Application, bolt: AsyncApp, config: SlackConfig) -> None:
    """The two pages of the flow (GET, not signed: a browser asks for them)."""
    flow = bolt.oauth_flow
    if flow is None:
        return

    async def install(request: web.Request) -> web.StreamResponse:
        req = AsyncBoltRequest(body="", query=request.query_string, headers=dict(request.headers))
        return await to_aiohttp_response(await flow.handle_installation(req))

    async def redirect(request: web.Request) -> web.StreamResponse:
        req = AsyncBoltRequest(body="", query=request.query_string, headers=dict(request.headers))
        try:
            resp = await flow.handle_callback(req)
        except Exception as err:  # never a traceback in a browser
            log.error("slack: the OAuth callback failed: %s", fault(err))
            return web.Response(status=500, text="The installation could not be completed.")
        return await to_aiohttp_response(resp)

    app.router.add_get(config.oauth.install_path, install)
    app.router.add_get(config.oauth.redirect_path, redirect)
