# ruff: noqa: E402  (imports follow the sys.path line so the script runs from anywhere)
"""Relay delivery rate with a realistic platform round trip.

A burst of private replies (one per vote click, say) and public posts in many channels, delivered
through a simulated platform that takes ``--latency`` seconds per call (50 ms by default, about
Slack's), by: one worker delivering 8 at a time (the relay's old fixed bound), one worker at
``outbox.concurrency`` (64 by default), and two workers on the same database. Prints deliveries per
second and the time the burst took, and checks that each channel's posts arrived in order, one at a
time.

    .venv/bin/python benchmarks/relay_rate.py [--database-url postgresql://...] [--replies 2400]
        [--channels 20] [--posts 10] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from crash_restart import database
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import OutboxConfig
from bot.messages import Message, Part
from bot.persistence.db import make_engine, make_sessionmaker
from bot.persistence.migrate import upgrade
from bot.persistence.tables import OutboxRow, RoundRow
from bot.ports import SystemClock
from bot.prompts import PromptKey, Prompts
from bot.service.relay import OutboxRelay
from tests.relay.platform import FilePlatform


def message(n: int) -> dict[str, object]:
    return Message((Part(PromptKey.RELEASE_IDEA, {"label": n, "text": f"idea {n}"}),)).to_json()


async def burst(sessions: async_sessionmaker[AsyncSession], replies: int, channels: int, posts: int) -> None:
    async with sessions() as s, s.begin():
        await s.execute(delete(OutboxRow))
        for n in range(max(replies, posts)):
            for c in range(channels) if n < posts else ():
                s.add(
                    OutboxRow(
                        round_id="bench",
                        platform="slack",
                        workspace_id="T",
                        channel_id=f"C{c}",
                        visibility="public",
                        body=message(n + 1),
                        status="pending",
                        attempts=0,
                    )
                )
            if n < replies:
                s.add(
                    OutboxRow(
                        round_id="bench",
                        platform="slack",
                        workspace_id="T",
                        channel_id=f"C{n % channels}",
                        visibility="private",
                        recipient_id=f"U{n}",
                        body=message(n + 1),
                        status="pending",
                        attempts=0,
                    )
                )


async def deliver(url: str, workers: int, concurrency: int, args: argparse.Namespace) -> tuple[float, int]:
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    await burst(sessions, args.replies, args.channels, args.posts)
    platform = FilePlatform(latency=args.latency)
    relays = [
        OutboxRelay(
            sessions, platform.ports(), Prompts(), SystemClock(), OutboxConfig(concurrency=concurrency)
        )
        for _ in range(workers)
    ]
    for relay in relays:
        await relay.start()
    stop = asyncio.Event()
    started = time.perf_counter()
    running = [asyncio.create_task(r.run_forever(stop)) for r in relays]
    while True:
        async with sessions() as s:
            left = await s.scalar(
                select(func.count())
                .select_from(OutboxRow)
                .where(OutboxRow.status.in_(["pending", "in_flight"]))
            )
        if not left:
            break
        await asyncio.sleep(0.02)
    took = time.perf_counter() - started
    stop.set()
    for relay in relays:
        relay.wake()
    await asyncio.gather(*running)
    for relay in relays:
        await relay.aclose()
    await engine.dispose()
    breaks = platform.overlaps
    for c in range(args.channels):
        got = [int(m) for t in platform.posts(f"C{c}") for m in re.findall(r"idea (\d+)", t)]
        breaks += got != list(range(1, args.posts + 1))
    return took, breaks


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with database(args.database_url, Path(tmp)) as url:
            engine = make_engine(url)
            await upgrade(engine)
            async with make_sessionmaker(engine)() as s, s.begin():
                s.add(
                    RoundRow(
                        id="bench",
                        title="t",
                        purpose="p",
                        template="standard",
                        language="en",
                        phase="vote",
                        version=1,
                        conveners=[],
                        settings={},
                        key_destroyed=False,
                    )
                )
            await engine.dispose()
            total = args.replies + args.channels * args.posts
            print(
                f"relay: {args.replies} private replies and {args.posts} posts in each of {args.channels} "
                f"channels ({total} deliveries), {args.latency * 1000:.0f} ms per platform call, "
                f"{url.split(':')[0]}"
            )
            base = None
            for workers, concurrency in (
                (1, 8),
                (1, OutboxConfig().concurrency),
                (2, OutboxConfig().concurrency),
            ):
                took, breaks = await deliver(url, workers, concurrency, args)
                base = base or took
                print(
                    f"  {workers} worker{'s' if workers > 1 else ' '} x {concurrency:3d} lanes: "
                    f"{took:6.2f} s, {total / took:7.0f} deliveries/s ({base / took:4.1f}x), "
                    f"order breaks {breaks}"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--replies", type=int, default=2400)
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--posts", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.05)
    asyncio.run(main(parser.parse_args()))
