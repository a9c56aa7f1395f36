"""Running the Slack adapter from `convene run`: `make_port` and `run_slack`.

    port = make_port(config.slack)                 # before build_app: {"slack": port}
    app = await build_app(config, {"slack": port, ...})
    app.start_background()
    await run_slack(app, config.slack, stop)       # returns once ``stop`` is set
    await app.aclose()                             # also closes the port's pooled HTTP session

Secrets come from the environment variables the config names (never from the config itself).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping

from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.app import App
from bot.config import ConfigError, SlackConfig
from bot.heap import settle_startup_heap
from bot.ports import DeliveryError

from .app import create_bolt_app, web_app
from .oauth import make_store
from .port import SlackChatPort, make_client

log = logging.getLogger("convene.slack")


# What Slack answers for a token it will never accept: a configuration error, not a fault to retry.
REFUSED_TOKEN = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "not_allowed_token_type",
    }
)


def secret(env: Mapping[str, str], name: str, what: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"slack: the environment variable {name} ({what}) is not set")
    return value


def make_port(config: SlackConfig, env: Mapping[str, str] | None = None) -> SlackChatPort:
    """The ChatPort for ``build_app(..., {"slack": port})``; its client uses ``api_base_url``. With
    ``slack.oauth`` it has no token of its own: `make_bolt_app` gives it the installation store, and
    until then a delivery waits as if offline."""
    env = os.environ if env is None else env
    if config.oauth.enabled:
        secret(env, config.oauth.client_id_env, "the app's client id")  # fail early, naming it
        secret(env, config.oauth.client_secret_env, "the app's client secret")
        return SlackChatPort(make_client("", config.api_base_url), tokens=Unbound())
    token = secret(env, config.bot_token_env, "the bot token, xoxb-...")
    return SlackChatPort(make_client(token, config.api_base_url))


class Unbound:
    """OAuth mode before the installation store exists (the port is made before the database)."""

    async def for_team(self, team_id: str) -> str:
        raise DeliveryError("slack: the installation store is not ready", offline=True)

    def forget(self, team_id: str) -> None:
        return None


def freeze_startup_heap() -> None:
    """Take what startup built (modules, the ORM's mappers, bolt, prompts: ~130k objects) out of the
    garbage collector's reach. A full collection over them paused the event loop for 70-100 ms, which
    was most of the ack p99 in benchmarks/slack_ack.py; frozen, full collections only scan what was
    allocated since. The start's garbage goes back to the OS (``bot.heap``). Process-wide and
    idempotent; called once everything is built, before serving."""
    settle_startup_heap()


def make_bolt_app(app: App, config: SlackConfig, env: Mapping[str, str] | None = None) -> AsyncApp:
    env = os.environ if env is None else env
    signing = secret(env, config.signing_secret_env, "the signing secret") if config.mode == "http" else None
    if config.oauth.enabled:
        client_id = secret(env, config.oauth.client_id_env, "the app's client id")
        store = make_store(config, client_id, app.engine, app.core)
        port = app.relay.ports.get("slack")
        if isinstance(port, SlackChatPort):
            port.tokens = store  # the relay posts with each workspace's own token from now on
        return create_bolt_app(
            app.core,
            config,
            client=make_client("", config.api_base_url),
            signing_secret=signing,
            installations=store,
            env=env,
            engine=app.engine,
        )
    token = secret(env, config.bot_token_env, "the bot token, xoxb-...")
    return create_bolt_app(
        app.core, config, client=make_client(token, config.api_base_url), signing_secret=signing
    )


async def run_slack(
    app: App,
    config: SlackConfig,
    stop: asyncio.Event,
    *,
    env: Mapping[str, str] | None = None,
    extra_routes: Callable[[web.Application], None] | None = None,
) -> None:
    """Serve Slack until ``stop`` is set: Socket Mode (default) or HTTP on ``config.http``.
    Raises ConfigError naming a missing environment variable before connecting anything, or a token
    Slack refuses; anything else that ends it early is a fault the supervisor restarts from.
    ``extra_routes`` adds routes to the HTTP-mode server (`/healthz` and `/metrics` on one port)."""
    env = os.environ if env is None else env
    bolt = make_bolt_app(app, config, env)
    freeze_startup_heap()
    if config.mode == "socket":
        app_token = secret(env, config.app_token_env, "the app-level token, xapp-...")
        handler = AsyncSocketModeHandler(bolt, app_token=app_token, web_client=bolt.client)
        try:
            await handler.connect_async()  # type: ignore[no-untyped-call]
        except SlackApiError as err:
            await handler.close_async()  # type: ignore[no-untyped-call]
            if err.response.get("error") in REFUSED_TOKEN:
                raise ConfigError(
                    f"slack: the app-level token in {config.app_token_env} was refused"
                ) from None
            raise
        log.info("slack: connected in Socket Mode")
        try:
            await stop.wait()
        finally:
            await handler.close_async()  # type: ignore[no-untyped-call]
            await bolt.convene_handlers.aclose()  # type: ignore[attr-defined]
        return
    signing = secret(env, config.signing_secret_env, "the signing secret")
    served = web_app(bolt, signing, config.http.path)
    if extra_routes is not None:
        extra_routes(served)
    runner = web.AppRunner(served, handle_signals=False, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, config.http.host, config.http.port)
    await site.start()
    log.info("slack: listening on http://%s:%s%s", config.http.host, config.http.port, config.http.path)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await bolt.convene_handlers.aclose()  # type: ignore[attr-defined]
