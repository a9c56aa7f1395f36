"""One adapter's failure never stops another: each runs under `supervise`, which logs the failure
(no payload, no user id) and starts that adapter again after a backoff. Only a configuration an
adapter refuses at its first start ends `convene run` (exit code 2)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.cli import _serve
from adapters.discord.runner import make_port as discord_port
from adapters.discord.runner import run_discord
from adapters.faults import Backoff, fault, supervise
from adapters.slack.port import SlackChatPort, make_client
from adapters.slack.runner import run_slack
from bot.app import App, build_app
from bot.config import ConfigError, parse_config
from bot.keys import MemoryKeyStore
from bot.ports import FixedClock
from tests.adapters.discord.rig import CONVENER_ROLE, world
from tests.platform_fakes import discord_payloads as p
from tests.platform_fakes.discord import FakeDiscord
from tests.platform_fakes.slack import FakeSlackWebAPI, SlackClientSim

QUICK = Backoff(first=0.01, longest=0.05, settled=5.0, jitter=0.0)


def test_fault_names_the_exception_and_where_never_its_message() -> None:
    try:
        int("SECRET-PAYLOAD")
    except ValueError as err:
        described = fault(err)
    assert described.startswith("ValueError at ")
    assert "test_supervision.py:" in described
    assert "SECRET" not in described
    assert fault(KeyError("U0SECRET")) == "KeyError"  # never raised: no traceback to point at


async def test_a_failing_adapter_restarts_alone_with_backoff() -> None:
    stop = asyncio.Event()
    runs: list[float] = []
    steady = asyncio.Event()
    loop = asyncio.get_running_loop()

    fourth = asyncio.Event()

    async def flaky() -> None:
        runs.append(loop.time())
        if len(runs) < 4:
            raise ValueError("invalid literal for int() with base 10: 'x'")  # a parser error
        fourth.set()
        await stop.wait()

    async def steady_adapter() -> None:
        steady.set()
        await stop.wait()

    causes: list[BaseException | None] = []
    backoff = Backoff(first=0.02, longest=0.2, settled=5.0, jitter=0.0)
    tasks = [
        asyncio.create_task(supervise("flaky", flaky, stop, backoff, on_restart=causes.append)),
        asyncio.create_task(supervise("steady", steady_adapter, stop, backoff)),
    ]
    await asyncio.wait_for(fourth.wait(), 5)
    assert steady.is_set()
    assert not any(t.done() for t in tasks)  # the other adapter carries on
    gaps = [b - a for a, b in itertools.pairwise(runs)]
    assert gaps[0] >= 0.02
    assert gaps[1] >= 0.04  # doubling
    assert gaps[2] >= 0.08
    assert [type(c) for c in causes] == [ValueError] * 3
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 2)


async def test_config_errors_end_the_run_only_at_the_first_start(caplog: pytest.LogCaptureFixture) -> None:
    stop = asyncio.Event()

    async def refused() -> None:
        raise ConfigError("discord: the bot token in DISCORD_TOKEN was refused")

    with pytest.raises(ConfigError):
        await supervise("discord", refused, stop, QUICK)

    attempts = 0
    serving = asyncio.Event()

    async def revoked_later() -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise OSError("connection reset")
        if attempts < 4:
            raise ConfigError("slack: the app-level token in SLACK_APP_TOKEN was refused")
        serving.set()
        await stop.wait()

    task = asyncio.create_task(supervise("slack", revoked_later, stop, QUICK))
    await asyncio.wait_for(serving.wait(), 5)
    assert not task.done()  # a token revoked while running is retried, not the end of the process
    stop.set()
    await asyncio.wait_for(task, 2)
    assert "was refused; trying again" in caplog.text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def both_platforms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """What `convene run` starts with Slack (HTTP mode) and Discord enabled, against both fakes."""
    guilds, users = world()
    # run_discord points discord.py at the fake for the whole process: patch_discord restores it.
    async with FakeSlackWebAPI() as slack, FakeDiscord(guilds=guilds) as discord:
        stack = contextlib.ExitStack()
        stack.enter_context(discord.patch_discord())
        port = free_port()
        monkeypatch.setenv("CONVENE_TEST_DISCORD_TOKEN", discord.token)
        config = parse_config(
            {
                "database": {"url": f"sqlite+aiosqlite:///{tmp_path}/convene.db"},
                "slack": {
                    "enabled": True,
                    "mode": "http",
                    "api_base_url": slack.base_url,
                    "http": {"host": "127.0.0.1", "port": port},
                    "conveners": {"user_ids": ["U0MAYA"]},
                },
                "discord": {
                    "enabled": True,
                    "token_env": "CONVENE_TEST_DISCORD_TOKEN",
                    "api_base_url": discord.rest_base,
                    "gateway_url": discord.gateway_url,
                    "conveners": {"user_ids": [users["owner"]["id"]], "role_ids": [CONVENER_ROLE]},
                },
            }
        )
        slack_port = SlackChatPort(make_client(slack.bot_token, slack.base_url))
        app = await build_app(
            config,
            {"slack": slack_port, "discord": discord_port()},
            keys=MemoryKeyStore(),
            clock=FixedClock(dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)),
        )
        app.start_background()
        env = {
            config.slack.bot_token_env: slack.bot_token,
            config.slack.signing_secret_env: slack.signing_secret,
        }

        def start_slack(a: App) -> Any:
            return run_slack(a, config.slack, a.stop, env=env)

        def start_discord(a: App) -> Any:
            return run_discord(a, config.discord, a.stop, guild_ready_timeout=0.01)

        serving = asyncio.create_task(_serve(app, {"slack": start_slack, "discord": start_discord}, QUICK))
        try:
            async with SlackClientSim(f"http://127.0.0.1:{port}/slack/events", slack.signing_secret) as sim:
                await discord.wait_connected()
                yield slack, discord, sim, app, users, serving
                app.stop.set()
                assert await asyncio.wait_for(serving, 15) == 0  # a clean stop, not exit code 2
        finally:
            app.stop.set()
            await asyncio.wait_for(serving, 15)
            stack.close()


async def slack_answers(slack: FakeSlackWebAPI, sim: SlackClientSim, who: str) -> None:
    before = len(slack.calls("chat.postEphemeral"))
    for _ in range(100):  # the HTTP endpoint may be (re)starting
        with contextlib.suppress(OSError):
            resp = await sim.send(slack.payloads.slash_command(text="help", user_id=who, user_name="x"))
            assert resp.status == 200
            break
        await asyncio.sleep(0.05)
    await slack.wait_for("chat.postEphemeral", before + 1, timeout=5)


async def discord_answers(discord: FakeDiscord, users: dict[str, p.JSON]) -> None:
    await discord.wait_connected()
    rec = await discord.interact(discord.slash("convene", "help", user=users["alice"]))
    assert (await rec.callback(timeout=3))["type"] == 5
    await rec.wait_followups(1, timeout=5)


async def test_a_broken_discord_connection_never_stops_slack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with both_platforms(tmp_path, monkeypatch) as (slack, discord, sim, _, users, serving):
        await slack_answers(slack, sim, "U0ALICE")
        await discord_answers(discord, users)
        # Frames discord.py's gateway reader cannot take (they used to end the shared TaskGroup;
        # two of them ended `convene run` with "invalid literal for int()" as a config error).
        for frame in (
            "this is not JSON",
            {"op": 10, "d": None},  # HELLO without an interval
            {"op": 0, "t": "READY", "s": 1, "d": {"v": 10}},  # READY without a session
            "[" * 5000 + "]" * 5000,  # deeper than the JSON parser recurses
        ):
            identifies = len(discord.identifies)
            await discord.wait_connected()
            await discord.send_raw(frame)
            await slack_answers(slack, sim, "U0BOB")  # Slack carries on meanwhile
            await discord.wait_until(lambda n=identifies: len(discord.identifies) > n, 10, "a reconnect")
            await discord_answers(discord, users)
        assert not serving.done()
        # Interaction frames discord.py cannot parse do not even cost a reconnect.
        identifies = len(discord.identifies)
        for payload in (None, [], {"type": 3, "data": None}, {"id": "x", "token": 5}):
            await discord.send_interaction(payload)
        await discord_answers(discord, users)
        assert len(discord.identifies) == identifies
    assert "starting it again" in caplog.text
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.exc_info]
    assert "this is not JSON" not in caplog.text


async def test_a_refused_token_at_start_ends_the_run_with_code_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    guilds, _ = world()
    async with FakeDiscord(guilds=guilds) as discord:
        stack = contextlib.ExitStack()
        stack.enter_context(discord.patch_discord())
        monkeypatch.setenv("CONVENE_TEST_DISCORD_TOKEN", "not-the-token")
        config = parse_config(
            {
                "database": {"url": f"sqlite+aiosqlite:///{tmp_path}/convene.db"},
                "discord": {
                    "enabled": True,
                    "token_env": "CONVENE_TEST_DISCORD_TOKEN",
                    "api_base_url": discord.rest_base,
                    "gateway_url": discord.gateway_url,
                },
            }
        )
        app = await build_app(config, {"discord": discord_port()}, keys=MemoryKeyStore())

        def start(a: App) -> Any:
            return run_discord(a, config.discord, a.stop, guild_ready_timeout=0.01)

        try:
            assert await asyncio.wait_for(_serve(app, {"discord": start}, QUICK), 15) == 2
        finally:
            stack.close()
    assert "CONVENE_TEST_DISCORD_TOKEN was refused" in capsys.readouterr().err
