"""Entry points the CLI wires up: ``run_discord``, ``make_port`` and ``sync_commands``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

import discord
import discord.gateway
import discord.http
import yarl

from bot.app import App
from bot.config import ConfigError, DiscordConfig
from bot.prompts import Prompts

from .client import ConveneClient, client_class
from .port import DiscordChatPort

log = logging.getLogger("convene.discord")


def token_from_env(config: DiscordConfig) -> str:
    token = os.environ.get(config.token_env, "").strip()
    if not token:
        raise ConfigError(
            f"discord: the bot token is missing; set the environment variable {config.token_env}"
        )
    return token


def refused(err: discord.DiscordException, config: DiscordConfig) -> ConfigError | None:
    """What Discord refuses for good, as the configuration error it is (anything else is a fault
    the supervisor restarts from)."""
    if isinstance(err, discord.LoginFailure):
        return ConfigError(f"discord: the bot token in {config.token_env} was refused")
    if isinstance(err, discord.PrivilegedIntentsRequired):
        return ConfigError("discord: the bot asked for an intent the application does not allow")
    return None


def apply_overrides(config: DiscordConfig) -> None:
    """Point discord.py at ``api_base_url``/``gateway_url`` (proxies, the test fake). Process-wide."""
    if config.api_base_url:
        discord.http.Route.BASE = config.api_base_url.rstrip("/")
    if config.gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(config.gateway_url)


def make_port() -> DiscordChatPort:
    """The port to pass to ``build_app(config, {"discord": port})``; ``run_discord`` connects it."""
    return DiscordChatPort()


def make_client(
    app: App, config: DiscordConfig, port: DiscordChatPort | None = None, **overrides: Any
) -> ConveneClient:
    """A client bound to ``app.core`` and to the app's Discord port (if any)."""
    found = app.relay.ports.get("discord")
    port = port or (found if isinstance(found, DiscordChatPort) else None)
    cls = client_class(config)  # AutoSharded when shard_count is set
    client = cls(config, app.core.prompts, core=app.core, acks=port.acks if port else None, **overrides)
    if port is not None:
        port.attach(client)
    return client


async def run_discord(app: App, config: DiscordConfig, stop: asyncio.Event, **overrides: Any) -> None:
    """Run the Discord adapter until ``stop`` is set, or until the client fails (the supervisor in
    ``adapters.faults`` then starts a fresh one). The token comes from the environment variable
    ``config.token_env``; a missing or refused one raises ``ConfigError`` naming it."""
    token = token_from_env(config)
    apply_overrides(config)
    client = make_client(app, config, **overrides)
    runner = asyncio.create_task(client.start(token), name="convene-discord")
    stopper = asyncio.create_task(stop.wait(), name="convene-discord-stop")
    try:
        await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        await client.close()
        if not runner.done():
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(runner, 10)
    if stop.is_set() or not runner.done() or runner.cancelled():
        return
    err = runner.exception()
    if err is not None:
        config_error = refused(err, config) if isinstance(err, discord.DiscordException) else None
        if config_error is not None:
            raise config_error from None
        raise err


async def sync_commands(
    config: DiscordConfig, guild_id: str | None = None, *, prompts: Prompts | None = None
) -> list[str]:
    """Register ``/convene`` (``convene discord sync [--guild ID]``): to ``guild_id``, else to
    ``config.guild_ids``, else globally. Logs in over REST only (no gateway). Returns where it synced."""
    token = token_from_env(config)
    apply_overrides(config)
    client = ConveneClient(config, prompts or Prompts())
    targets = [guild_id] if guild_id else list(config.guild_ids)
    done: list[str] = []
    try:
        try:
            await client.login(token)
        except discord.LoginFailure as err:
            raise refused(err, config) or err from None
        if not targets:
            await client.tree.sync()
            done.append("global")
        for gid in targets:
            guild = discord.Object(int(gid))
            client.tree.copy_global_to(guild=guild)
            await client.tree.sync(guild=guild)
            done.append(gid)
    finally:
        await client.close()
    return done
