"""What many workspaces cost a request: CPU per signed Slack request through bolt, authorized by one
bot token (single-token mode, the baseline) and by the workspace's installation (``slack.oauth``: the
installation store on SQLite, its answers cached per worker), in the same run.

Each request is a signed Events API ``message`` event in a channel (bolt verifies it, authorizes it,
runs the middleware and convene's listener, which leaves channel messages alone): what is measured is
what authorization adds to every click. With ``--workspaces N`` the OAuth requests come from N
installed workspaces in turn. Prints the median CPU (time.process_time) per request of each, over
``--rounds`` runs, and the ratio.

    .venv/bin/python benchmarks/oauth_authorize.py [--requests 2000] [--workspaces 20] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slack_sdk.oauth.installation_store.models.installation import Installation

from adapters.slack import runner
from adapters.slack.app import create_bolt_app
from adapters.slack.port import make_client
from bot.app import build_app
from bot.config import AppConfig, DatabaseConfig, SlackConfig, SlackOAuth
from bot.keys import MemoryKeyStore
from bot.ports import FixedClock
from tests.platform_fakes.slack import FakeSlackWebAPI
from tests.platform_fakes.slack_payloads import SlackPayloads, SlackWorkspace

ENV = {"SLACK_CLIENT_ID": "111.222", "SLACK_CLIENT_SECRET": "s"}


async def per_request(bolt: object, requests: list[object]) -> float:
    dispatch = bolt.async_dispatch  # type: ignore[attr-defined]
    handlers = bolt.convene_handlers  # type: ignore[attr-defined]
    for req in requests[:50]:  # warm: auth.test answers cached, caches filled
        await dispatch(req)
    await handlers.wait_idle()
    start = time.process_time()
    for req in requests:
        resp = await dispatch(req)
        assert resp.status == 200, resp.body
    await handlers.wait_idle()
    return (time.process_time() - start) / len(requests) * 1000.0


def signed(fake: FakeSlackWebAPI, ws: SlackWorkspace, n: int) -> list[object]:
    payloads = SlackPayloads(ws, issuer=fake)
    return [payloads.message_event(f"hello {i}").bolt_request(fake.signing_secret) for i in range(n)]


async def main(n: int, workspaces: int, rounds: int) -> None:
    logging.disable(logging.WARNING)
    teams = [SlackWorkspace(team_id=f"T0W{i:04d}", bot_user_id=f"U0BOT{i}") for i in range(workspaces)]
    single_ms: list[float] = []
    oauth_ms: list[float] = []
    async with FakeSlackWebAPI() as fake:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{tmp}/b.db"
            single_cfg = SlackConfig(enabled=True, mode="http", api_base_url=fake.base_url)
            oauth_cfg = SlackConfig(
                enabled=True, mode="http", api_base_url=fake.base_url, oauth=SlackOAuth(enabled=True)
            )
            config = AppConfig(database=DatabaseConfig(url=url), slack=oauth_cfg)
            env = {**ENV, "SLACK_SIGNING_SECRET": fake.signing_secret}
            app = await build_app(
                config, {"slack": runner.make_port(oauth_cfg, env)}, keys=MemoryKeyStore(), clock=FixedClock()
            )
            try:
                oauth_bolt = runner.make_bolt_app(app, oauth_cfg, env)
                store = oauth_bolt.convene_handlers.tokens  # type: ignore[attr-defined]
                for i, ws in enumerate(teams):
                    token = f"xoxb-bench-{i}"
                    fake.extra_bot_tokens.add(token)
                    fake.token_workspaces[token] = ws
                    await store.async_save(
                        Installation(
                            app_id=ws.api_app_id,
                            team_id=ws.team_id,
                            bot_token=token,
                            bot_id=ws.bot_id,
                            bot_user_id=ws.bot_user_id,
                            user_id="U0INSTALLER",
                            installed_at=dt.datetime.now(dt.UTC).timestamp(),
                        )
                    )
                single_bolt = create_bolt_app(
                    app.core,
                    single_cfg,
                    client=make_client(fake.bot_token, fake.base_url),
                    signing_secret=fake.signing_secret,
                )
                for _ in range(rounds):
                    one = signed(fake, SlackWorkspace(), n)
                    many = [r for i in range(n) for r in signed(fake, teams[i % workspaces], 1)]
                    single_ms.append(await per_request(single_bolt, one))
                    oauth_ms.append(await per_request(oauth_bolt, many))
            finally:
                await app.aclose()
    s, o = statistics.median(single_ms), statistics.median(oauth_ms)
    print(f"{n} signed requests x {rounds} rounds; OAuth from {workspaces} installed workspaces")
    print(f"single token : {s:.3f} ms CPU per request (median)")
    print(f"oauth        : {o:.3f} ms CPU per request (median)")
    print(f"ratio oauth/single: {o / s:.2f}  (+{o - s:.3f} ms per request)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--workspaces", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.workspaces, args.rounds))
