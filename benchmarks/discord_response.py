"""Discord adapter benchmark (offline, against the loopback FakeDiscord / fake Slack).

1. Deck click to updated card: INTERACTION_CREATE dispatched by the fake -> the interaction callback
   it receives, which for convene *is* the next card (UPDATE_MESSAGE of the voter's ephemeral card,
   after the vote was stored: the click's ballot batch, the next card computed and rendered), against
   a bare discord.py client that only ``defer()``s, in the same run, alternating blocks. Each click is
   the card's "Agree" (or "Back" once the voter has voted on everything, then a changed vote).
   Goal: convene p99 <= 1.5x bare.
2. Idle resident memory of one process running the convene App with both adapters connected
   (Discord gateway + Slack Socket Mode, the fakes in the parent process), on a database
   `convene db upgrade` migrated (as deploy/compose.yaml starts workers), and on a first start that
   migrates an empty one. Goal: <= 90 MiB for the worker.
   For reference, the same for bare discord.py + bare slack-bolt clients.

Run from the repository root: ``.venv/bin/python benchmarks/discord_response.py [--clicks N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import discord  # noqa: E402

if TYPE_CHECKING:
    from tests.adapters.discord.rig import Rig

# The measuring child process imports only what it runs (see _child); the fakes and the test rig
# are imported by the parent, inside the functions that use them.

BLOCKS = 4
GOAL_MIB = 90
# Not needed by an idle worker: charts and the consensus engine (a tally), migrations, OpenSSL's
# bindings (the first round key opened), the emoji tables (the first text with a shortcode), Jinja2
# (the first text rendered). pydantic: no longer a dependency (about 9 MiB); shown if anything brings it
# back.
HEAVY = (
    "numpy",
    "scipy",
    "matplotlib",
    "alembic",
    "mako",
    "cryptography",
    "emoji",
    "prometheus_client",
    "jinja2",
    "pydantic",
)
# Paced: 30 ms between clicks, so the relay has marked the previous confirmation sent (the
# measured click then meets an idle loop, as most clicks do). Back-to-back: no pause at all.
MODES = {"paced (30 ms apart)": 0.03, "back-to-back": 0.0}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _summary(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"median {statistics.median(ms):6.2f} ms  p90 {_pct(ms, 0.9):6.2f} ms  "
        f"p99 {_pct(ms, 0.99):6.2f} ms  (n={len(ms)})"
    )


def bare_client() -> discord.Client:
    from tests.platform_fakes.discord_client import client_kwargs

    client = discord.Client(**client_kwargs(intents=discord.Intents(guilds=True)))

    @client.event
    async def on_interaction(interaction: discord.Interaction) -> None:
        await interaction.response.defer()

    return client


async def _prepare(rig: Rig) -> str:
    rid = await rig.start_round()
    for who in ("alice", "bob"):
        await rig.join(who, rid)
    for n in range(3):
        await rig.contribute("alice", rid, f"Plant reeds, stretch {n}")
        await rig.contribute("bob", rid, f"Bins at bridge {n}")
    await rig.confirmed(await rig.slash("owner", "next"), "Cleaner river", "vote")
    await rig.wait_public(lambda m: f"cv:{rid}:deck" in rig.buttons(m))
    await rig.settle()
    for who in ("alice", "bob"):
        await rig.open_deck(who, rid)
    return rid


def _next_button(card: dict[str, Any]) -> str:
    labels = {c["label"] for row in card.get("components") or [] for c in row["components"]}
    return "Agree" if "Agree" in labels else "Back"


async def _clicks(rig: Rig, n: int, *, pause: float = 0.0) -> list[float]:
    """Deck clicks by alice and bob in turn, on their cards as they stand: callback times."""
    first: list[float] = []
    for i in range(n):
        who = "alice" if i % 2 else "bob"
        card = rig.card(who)
        assert card is not None
        rec = await rig.press(who, _next_button(card))
        await rec.callback(timeout=5)
        first.append(rec.attempts[0].at - rec.dispatched_at)
        await asyncio.sleep(pause)
    return first


async def response_times(clicks: int) -> None:
    from sqlalchemy import event

    from tests.adapters.discord.rig import make_rig
    from tests.platform_fakes.discord_client import running_client

    per_block = max(1, clicks // BLOCKS)
    print("Deck click: INTERACTION_CREATE -> interaction callback (fake's clock, loopback)")
    print("  (CPU: this process's time per click, the fake's share included on both sides)")
    with tempfile.TemporaryDirectory() as tmp:
        async with make_rig(Path(tmp)) as rig:
            statements = [0]

            def count(*_: Any) -> None:
                statements[0] += 1

            event.listen(rig.app.engine.sync_engine, "before_cursor_execute", count)
            async with rig.running():
                await _prepare(rig)
                await _clicks(rig, 10)  # warm-up
            async with running_client(rig.fake, bare_client()):
                await _clicks(rig, 10)  # warm-up
            for mode, pause in MODES.items():
                convene: list[float] = []
                bare: list[float] = []
                cpu = {"convene": 0.0, "bare": 0.0}
                statements[0] = 0
                for _ in range(BLOCKS):  # alternate blocks so drift hits both alike
                    async with rig.running():
                        began = time.process_time()
                        convene += await _clicks(rig, per_block, pause=pause)
                        cpu["convene"] += time.process_time() - began
                    async with running_client(rig.fake, bare_client()):
                        began = time.process_time()
                        bare += await _clicks(rig, per_block, pause=pause)
                        cpu["bare"] += time.process_time() - began
                p99 = _pct(convene, 0.99) / _pct(bare, 0.99)
                median = statistics.median(convene) / statistics.median(bare)
                verdict = "OK" if p99 <= 1.5 else "OVER"
                cpu_bare, cpu_convene = (1000 * cpu[k] / (per_block * BLOCKS) for k in ("bare", "convene"))
                print(f" {mode}")
                print(f"  bare discord.py defer          : {_summary(bare)}  CPU {cpu_bare:.2f} ms/click")
                print(
                    f"  convene deck click -> next card: {_summary(convene)}  "
                    f"CPU {cpu_convene:.2f} ms/click, {statements[0] / len(convene):.1f} SQL statements/click"
                )
                print(
                    f"  ratio of p99s {p99:.2f}x (goal <= 1.5x) {verdict}; ratio of medians {median:.2f}x; "
                    f"ratio of CPU {cpu_convene / cpu_bare:.2f}x"
                )


# --- idle memory (child process) --------------------------------------------------------------------


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _threads() -> int:
    return len(list(Path("/proc/self/task").iterdir()))


async def _child(spec: dict[str, Any]) -> dict[str, Any]:
    idle = float(spec["idle"])
    stop = asyncio.Event()
    if spec["mode"] == "bare":
        from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
        from slack_bolt.async_app import AsyncApp
        from slack_sdk.web.async_client import AsyncWebClient

        discord.http.Route.BASE = spec["discord_rest"]
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = discord.gateway.yarl.URL(spec["discord_gateway"])  # type: ignore[attr-defined]
        client = discord.Client(
            intents=discord.Intents(guilds=True), max_messages=None, chunk_guilds_at_startup=False
        )
        task = asyncio.create_task(client.start(spec["discord_token"]))
        for _ in range(200):
            if client.is_ready():
                break
            await asyncio.sleep(0.05)
        bolt = AsyncApp(client=AsyncWebClient(token=spec["slack_bot"], base_url=spec["slack_base"]))
        handler = AsyncSocketModeHandler(bolt, app_token=spec["slack_app"], web_client=bolt.client)
        await handler.connect_async()  # type: ignore[no-untyped-call]
        await asyncio.sleep(idle)
        bare_result: dict[str, Any] = {"rss_mib": _rss_mib(), "threads": _threads()}
        await handler.close_async()  # type: ignore[no-untyped-call]
        await client.close()
        with contextlib.suppress(Exception):
            await task
        return bare_result

    from adapters.discord import runner as discord_runner
    from adapters.slack import runner as slack_runner
    from bot.app import build_app
    from bot.config import parse_config
    from bot.keys import MemoryKeyStore
    from bot.ports import ChatPort

    env = {"SLACK_BOT_TOKEN": spec["slack_bot"], "SLACK_APP_TOKEN": spec["slack_app"]}
    os.environ["DISCORD_TOKEN"] = spec["discord_token"]
    config = parse_config(
        {
            "database": {"url": spec["db"]},
            "console": {"enabled": False},
            "slack": {"enabled": True, "mode": "socket", "api_base_url": spec["slack_base"]},
            "discord": {
                "enabled": True,
                "api_base_url": spec["discord_rest"],
                "gateway_url": spec["discord_gateway"],
            },
        }
    )
    slack_port = slack_runner.make_port(config.slack, env)
    discord_port = discord_runner.make_port()
    ports: dict[str, ChatPort] = {"slack": slack_port, "discord": discord_port}
    app = await build_app(config, ports, keys=MemoryKeyStore())
    app.start_background()
    tasks = [
        asyncio.create_task(slack_runner.run_slack(app, config.slack, stop, env=env)),
        asyncio.create_task(discord_runner.run_discord(app, config.discord, stop, guild_ready_timeout=0.1)),
    ]
    for _ in range(200):  # connected: the Discord port has a logged-in, ready client
        c = discord_port.client
        if c is not None and c.is_ready():
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(idle)
    heavy = [m for m in HEAVY if m in sys.modules]
    result: dict[str, Any] = {"rss_mib": _rss_mib(), "threads": _threads(), "heavy": heavy}
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    await app.aclose()
    with contextlib.suppress(Exception):
        await slack_port.aclose()
    return result


async def _migrate(url: str) -> None:
    """What `convene db upgrade` does before the workers start (deploy/compose.yaml)."""
    from bot.persistence.db import make_engine
    from bot.persistence.migrate import upgrade

    engine = make_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


IDLE_MODES = {
    "bare": "bare discord.py + slack-bolt",
    "convene": "convene, a worker after `convene db upgrade`",
    "convene-first": "convene, first start (migrates an empty db)",
}


async def _idle_child(mode: str, idle: float, db: str, fake: Any, slack: Any) -> dict[str, Any]:
    """One child process (bare clients, or a convene worker on ``db``): its idle figures."""
    spec = {
        "mode": "bare" if mode == "bare" else "convene",
        "idle": idle,
        "db": db,
        "discord_token": fake.token,
        "discord_rest": fake.rest_base,
        "discord_gateway": fake.gateway_url,
        "slack_base": slack.base_url,
        "slack_bot": slack.bot_token,
        "slack_app": slack.app_token,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--child", json.dumps(spec), stdout=asyncio.subprocess.PIPE, cwd=str(ROOT)
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    lines = [ln for ln in out.decode().splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {"rss_mib": float("nan"), "threads": 0}  # type: ignore[no-any-return]


async def idle_memory(idle: float, database_url: str | None = None) -> None:
    from benchmarks.databases import fresh_database  # not in the children: bare clients load no SQLAlchemy
    from tests.platform_fakes.discord import FakeDiscord
    from tests.platform_fakes.slack import FakeSlackWebAPI

    async with FakeDiscord() as fake, FakeSlackWebAPI() as slack:
        results: dict[str, dict[str, Any]] = {}
        for mode in IDLE_MODES:
            with tempfile.TemporaryDirectory() as tmp:
                async with fresh_database(database_url, Path(tmp), "idle") as db:  # empty
                    if mode == "convene":
                        await _migrate(db)
                    results[mode] = await _idle_child(mode, idle, db, fake, slack)
        head = "Idle resident memory, one process, Discord + Slack (Socket Mode) connected"
        where = "PostgreSQL" if database_url else "SQLite"
        print(f"{head}, after {idle:g} s idle, on {where}")
        for mode, what in IDLE_MODES.items():
            r = results[mode]
            line = f"  {what:46s}: {r['rss_mib']:6.1f} MiB, {r['threads']} threads"
            if mode == "convene":
                verdict = "OK" if r["rss_mib"] <= GOAL_MIB else "OVER"
                line += f"  (goal <= {GOAL_MIB} MiB) {verdict}"
            if r.get("heavy"):
                line += f"  [loaded: {', '.join(r['heavy'])}]"
            print(line)
        ratio = results["convene"]["rss_mib"] / results["bare"]["rss_mib"]
        print(f"  ratio convene worker / bare clients: {ratio:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=200)
    parser.add_argument("--idle", type=float, default=5.0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument(
        "--database-url",
        help="idle memory on PostgreSQL (a database of the run's own on this server); default: a SQLite file",
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_child(json.loads(args.child)))), flush=True)
        return
    if args.clicks:
        asyncio.run(response_times(args.clicks))
    if args.idle:
        asyncio.run(idle_memory(args.idle, args.database_url))


if __name__ == "__main__":
    main()
