"""The `convene` command: the composition root that wires the core to the enabled adapters."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from adapters.faults import Backoff, supervise
from bot import __version__
from bot.app import App
from bot.config import AppConfig, ConfigError, load_config
from bot.domain.errors import DomainError
from bot.heap import settle_startup_heap
from bot.keys import KeyUnavailable
from bot.persistence.db import make_engine, make_sessionmaker
from bot.ports import ChatPort
from bot.prompts import Prompts

log = logging.getLogger("convene")

Starter = Callable[[App], Coroutine[Any, Any, None]]  # runs one adapter until app.stop


def _say(text: str) -> None:
    print(text)


def _fail(text: str, code: int = 2) -> int:
    print(f"convene: {text}", file=sys.stderr)
    return code


def _config(path: str | None) -> AppConfig:
    return load_config(path) if path else AppConfig()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="convene", description="Convene cross-sector dialogue in Slack and Discord."
    )
    p.add_argument("--version", action="version", version=f"convene {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="play a scripted whole round on two simulated platforms")
    demo.add_argument(
        "--out", default="convene-demo", help="folder for report.json, report.md, transcript.txt"
    )
    demo.add_argument("--quiet", action="store_true", help="do not print the channels")
    demo.add_argument(
        "--follow-up",
        action="store_true",
        help="then follow the round up for 120 simulated days (writes followup.json)",
    )

    console = sub.add_parser("console", help="an interactive round in the terminal")
    console.add_argument("--config", help="YAML config (default: built-in, SQLite convene.db)")

    run = sub.add_parser("run", help="start the adapters the config enables")
    run.add_argument(
        "--config",
        required=True,
        action="append",
        help="YAML config; repeat it to lay a worker's own file (e.g. discord.shard_ids) over a shared one",
    )

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="create or migrate the schema")
    up.add_argument("--config")

    exp = sub.add_parser("export", help="export a round")
    exp.add_argument("round", help="round id (or a unique prefix)")
    exp.add_argument("--format", choices=["json", "csv", "md", "polis"], default="json")
    exp.add_argument("--out", help="file (json, md), or folder (csv, polis); default: standard output")
    exp.add_argument("--config")

    erase = sub.add_parser(
        "erase", help="erase one person from every round (what they said stays, with no name)"
    )
    erase.add_argument("--config", required=True)
    erase.add_argument(
        "--user", required=True, help="PLATFORM:USER_ID, e.g. slack:U0123ABCD or discord:123456789012345678"
    )
    purge = sub.add_parser(
        "purge", help="apply retention now (`convene run` does daily): forget who took part in ended rounds"
    )
    purge.add_argument("--config", required=True)

    check = sub.add_parser("check-config", help="validate a config file")
    check.add_argument("file")

    analyze = sub.add_parser("analyze", help="run the consensus engine on a Polis CSV export folder")
    analyze.add_argument("dir")
    analyze.add_argument("--json", action="store_true")
    analyze.add_argument("--seed", type=int, default=0)

    discord = sub.add_parser("discord", help="Discord tools")
    d_sub = discord.add_subparsers(dest="discord_command", required=True)
    sync = d_sub.add_parser("sync", help="register the /convene commands")
    sync.add_argument("--config", required=True)
    sync.add_argument("--guild")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(_dispatch(args))
    except ConfigError as err:
        return _fail(str(err))
    except KeyUnavailable as err:
        return _fail(str(err))
    except KeyboardInterrupt:
        return 130


async def _dispatch(args: argparse.Namespace) -> int:
    cmd = args.command
    if cmd == "demo":
        return await _demo(Path(args.out), quiet=args.quiet, follow_up=args.follow_up)
    if cmd == "check-config":
        cfg = load_config(args.file)
        _say(f"{args.file}: OK (adapters enabled: {', '.join(_enabled(cfg)) or 'none'})")
        return 0
    if cmd == "db":
        from bot.persistence.migrate import upgrade

        cfg = _config(args.config)
        engine = make_engine(cfg.database.url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()
        _say("database is up to date")
        return 0
    if cmd == "export":
        return await _export(args)
    if cmd == "console":
        from adapters.console.repl import run_console

        return await run_console(_as_trial(_config(args.config)))
    if cmd == "run":
        return await _run(load_config(*args.config))
    if cmd in ("erase", "purge"):
        return await _retention(args)
    if cmd == "analyze":
        return _analyze(args)
    if cmd == "discord":
        return await _discord_sync(load_config(args.config), args.guild)
    return _fail(f"unknown command {cmd}")


def _as_trial(cfg: AppConfig) -> AppConfig:
    """`convene console` is a trial on one machine: zero setup, a KEK made beside the keys if none given."""
    return replace(cfg, anonymity=replace(cfg.anonymity, trial=True))


def _enabled(cfg: AppConfig) -> list[str]:
    return [name for name in ("console", "slack", "discord") if getattr(cfg, name).enabled]


async def _demo(out: Path, *, quiet: bool, follow_up: bool = False) -> int:
    from adapters.console.demo import run_demo

    started = time.perf_counter()
    report = await run_demo(out, echo=None if quiet else _say, follow_up=follow_up)
    _say(
        f"\nDemo finished in {time.perf_counter() - started:.1f} s: {len(report['ideas'])} ideas, "
        f"{len(report['goals'])} goals, {len(report['actions'])} actions. Wrote {out}/report.json, "
        f"{out}/report.md and {out}/transcript.txt."
    )
    if follow_up:
        run = report["followup_run"]
        _say(
            f"Follow-up: {run['days']} simulated days, {run['restarts']} restart, "
            f"{len(run['reminders'])} reminders, {len(run['checkins'])} check-ins, "
            f"{len(run['pilot_reviews'])} pilot review. Wrote {out}/followup.json, "
            f"{out}/followup_transcript.txt, {out}/goals.csv and {out}/actions.csv."
        )
    return 0


async def _export(args: argparse.Namespace) -> int:
    from bot.reports import find_round, render_report_md, report_csv, round_report

    cfg = _config(args.config)
    engine = make_engine(cfg.database.url)
    try:
        sessions = make_sessionmaker(engine)
        try:
            rid = await find_round(sessions, args.round)
            if args.format == "polis":
                from bot.reports import export_polis

                if not args.out:
                    return _fail("--format polis writes a folder: give --out DIR")
                await export_polis(sessions, rid, Path(args.out))
                _say(f"wrote {args.out}/comments.csv, votes.csv and participants-votes.csv")
                return 0
            report = await round_report(sessions, rid)
        except DomainError as err:
            return _fail(Prompts().render(f"errors/{err.code}", err.params))
    finally:
        await engine.dispose()
    if args.format == "json":
        text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    elif args.format == "md":
        text = render_report_md(report)
    else:
        if args.out:
            folder = Path(args.out)
            folder.mkdir(parents=True, exist_ok=True)
            for table in ("ideas", "goals", "actions", "moderation"):
                (folder / f"{table}.csv").write_text(report_csv(report, table), encoding="utf-8")
            _say(f"wrote {folder}/ideas.csv, goals.csv, actions.csv and moderation.csv")
            return 0
        text = report_csv(report, "ideas")
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


async def _retention(args: argparse.Namespace) -> int:
    """`convene erase` and `convene purge`: one transaction through the retention capability, then
    SQLite's write-ahead log truncated, and a confirmation of what was deleted, kept, and why."""
    from dataclasses import asdict

    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.orm.exc import StaleDataError

    from bot.app import build_app
    from bot.keys import MemoryKeyStore
    from bot.persistence.db import truncate_wal
    from bot.refs import Platform
    from bot.service.errors import is_db_error
    from bot.service.handlers import retention

    cfg = load_config(args.config)
    platform, user = "", ""
    if args.command == "erase":
        platform, _sep, user = str(args.user).partition(":")
        if platform not in {p.value for p in Platform} or not user.strip():
            return _fail(f"--user takes PLATFORM:USER_ID with PLATFORM one of {', '.join(Platform)}")
        user = user.strip()
    # A purge reads no round key: it needs no key-encryption key either.
    app = await build_app(cfg, {}, keys=MemoryKeyStore() if args.command == "purge" else None)
    try:
        for attempt in range(3):  # `convene run` may be changing the same round: run again, fresh
            try:
                async with app.sessions() as s, s.begin():
                    u = app.core.bus.unit(s, None)
                    if args.command == "erase":
                        report: Any = await retention.erase(u, platform, user)
                    else:
                        report = await retention.purge(u)
                break
            except (StaleDataError, IntegrityError):
                if attempt == 2:
                    return _fail("the database kept changing under this command; run it again")
            except Exception as err:
                if is_db_error(err):
                    return _fail(f"the database is not available ({type(err).__name__}); nothing was changed")
                raise
        await app.core.services.compactor.wait()
        compacted = await truncate_wal(app.engine)
        database, prompts = app.engine.dialect.name, app.core.prompts
    finally:
        await app.aclose()
    params = {
        **asdict(report),
        "user": args.user if args.command == "erase" else None,
        "roster_days": cfg.retention.roster_days,
        "database": database,
        "compacted": compacted,
    }
    _say(prompts.render(f"cli/{'erased' if args.command == 'erase' else 'purged'}", params))
    return 0


def _analyze(args: argparse.Namespace) -> int:
    try:
        from bot.consensus.cli import analyze_command
    except ImportError:
        return _fail("the consensus engine is not available in this build")
    return analyze_command(args.dir, as_json=args.json, seed=args.seed, out=sys.stdout, err=sys.stderr)


async def _run(cfg: AppConfig) -> int:
    from bot.app import build_app
    from bot.logs import configure

    configure(cfg.logging.level, cfg.logging.format)
    if not _enabled(cfg):
        return _fail("no adapter is enabled in the config (console, slack or discord)")
    if cfg.console.enabled and (cfg.slack.enabled or cfg.discord.enabled):
        return _fail("console.enabled is for local use; disable it when running Slack or Discord")
    if cfg.console.enabled:
        from adapters.console.repl import run_console

        return await run_console(cfg)
    ports: dict[str, ChatPort] = {}
    starters: dict[str, Starter] = {}
    shared: list[Callable[[Any], None]] = []  # routes for Slack's HTTP server (ops on its port)
    if cfg.slack.enabled:
        try:
            from adapters.slack import runner as slack_runner
        except ImportError:
            return _fail("Slack is enabled but its extra is not installed: pip install 'convene[slack]'")
        ports["slack"] = slack_runner.make_port(cfg.slack)  # a missing token: ConfigError, exit 2
        starters["slack"] = lambda app: slack_runner.run_slack(
            app, cfg.slack, app.stop, extra_routes=shared[0] if shared else None
        )
    if cfg.discord.enabled:
        try:
            from adapters.discord import runner as discord_runner
        except ImportError:
            return _fail("Discord is enabled but its extra is not installed: pip install 'convene[discord]'")
        discord_runner.token_from_env(cfg.discord)  # fail early, naming the variable
        ports["discord"] = discord_runner.make_port()
        starters["discord"] = lambda app: discord_runner.run_discord(app, cfg.discord, app.stop)
    if cfg.ops.port is None:
        app = await build_app(cfg, ports)
    else:  # /healthz and /metrics
        try:
            from adapters import ops
        except ImportError:
            return _fail("ops.port needs aiohttp: pip install 'convene[slack]' or 'convene[discord]'")
        metrics = ops.PrometheusMetrics()
        app = await build_app(cfg, ports, metrics=metrics)
        endpoints = ops.OpsEndpoints(app, metrics)
        if ops.shares_slack_server(app):
            shared.append(endpoints.add_routes)
        else:
            starters["ops"] = lambda app: ops.serve_ops(app, endpoints, app.stop)
    # Long-lived start-up objects (config, prompts, SDK modules) leave the garbage collector's
    # view, so full collections stay short and do not show up as ack latency; the start's garbage
    # goes back to the OS.
    settle_startup_heap()
    app.start_background()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, app.stop.set)
    return await _serve(app, starters)


async def _serve(app: App, starters: Mapping[str, Starter], backoff: Backoff | None = None) -> int:
    """Each adapter under its own supervisor until ``app.stop``: a failure restarts that adapter
    alone. Only configuration an adapter refuses at its first start (a missing secret, a refused
    token) ends the run, with exit code 2."""
    failure = ""
    try:
        async with asyncio.TaskGroup() as tg:
            for name, start in starters.items():

                def run(start: Starter = start) -> Awaitable[None]:
                    return start(app)

                tg.create_task(supervise(name, run, app.stop, backoff), name=f"convene-{name}")
    except* ConfigError as group:
        failure = "; ".join(str(e) for e in group.exceptions)
    finally:
        await app.aclose()
    return _fail(failure) if failure else 0


async def _discord_sync(cfg: AppConfig, guild: str | None) -> int:
    try:
        from adapters.discord import runner as discord_runner
    except ImportError:
        return _fail("the Discord extra is not installed: pip install 'convene[discord]'")
    await discord_runner.sync_commands(cfg.discord, guild)  # a missing or refused token: ConfigError
    _say("Discord commands registered")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
