"""`make_port` and `run_slack`: secrets from the environment, both modes start and stop."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from adapters.slack.runner import make_port, run_slack
from bot.config import ConfigError
from tests.adapters.slack.rig import rig
from tests.platform_fakes.slack import FakeSlackWebAPI


def test_make_port_names_the_missing_env_var(fake_slack: FakeSlackWebAPI) -> None:
    from bot.config import SlackConfig

    config = SlackConfig(bot_token_env="CONVENE_TEST_SLACK_TOKEN", api_base_url=fake_slack.base_url)
    with pytest.raises(ConfigError, match="CONVENE_TEST_SLACK_TOKEN"):
        make_port(config, {})
    port = make_port(config, {"CONVENE_TEST_SLACK_TOKEN": fake_slack.bot_token})
    assert port.client.base_url == fake_slack.base_url


async def test_run_slack_socket_mode(fake_slack: FakeSlackWebAPI, tmp_path: Path) -> None:
    async with rig(fake_slack, tmp_path) as r:
        config = replace(r.app.config.slack, mode="socket")
        env = {config.bot_token_env: fake_slack.bot_token}
        stop = asyncio.Event()
        with pytest.raises(ConfigError, match=config.app_token_env):
            await run_slack(r.app, config, stop, env=env)
        env[config.app_token_env] = fake_slack.app_token
        task = asyncio.create_task(run_slack(r.app, config, stop, env=env))
        await fake_slack.wait_socket_connections(1)
        ack = await fake_slack.socket_deliver(fake_slack.payloads.slash_command(text="help"))
        assert ack["envelope_id"]
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_run_slack_http_mode(fake_slack: FakeSlackWebAPI, tmp_path: Path) -> None:
    async with rig(fake_slack, tmp_path) as r:
        config = replace(r.app.config.slack, http=replace(r.app.config.slack.http, port=0))
        env = {config.bot_token_env: fake_slack.bot_token}
        with pytest.raises(ConfigError, match=config.signing_secret_env):
            await run_slack(r.app, config, asyncio.Event(), env=env)
        env[config.signing_secret_env] = fake_slack.signing_secret
        stop = asyncio.Event()
        task = asyncio.create_task(run_slack(r.app, config, stop, env=env))
        await asyncio.sleep(0.2)
        assert not task.done()
        stop.set()
        await asyncio.wait_for(task, 5)
