"""A relay in a process of its own that SIGKILLs itself right after the platform accepted its N-th
delivery: the crash the tests in this folder recover from.

    python -m tests.relay.crash_child DATABASE_URL PLATFORM_LOG KILL_AFTER [WORKER_ID]

The "platform" is PLATFORM_LOG, one JSON line per delivery it accepted, shared with the test (and
with the relay that restarts after this one), so nothing but the file and the database survives.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from bot.config import OutboxConfig
from bot.persistence.db import make_engine, make_sessionmaker
from bot.ports import SystemClock
from bot.prompts import Prompts
from bot.service.relay import OutboxRelay
from tests.relay.platform import FilePlatform


async def main(url: str, log_path: str, kill_after: int, worker_id: str | None) -> None:
    accepted = 0

    def after_accept() -> None:
        nonlocal accepted
        accepted += 1
        if accepted >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)  # at once: no other coroutine runs after this

    engine = make_engine(url)
    platform = FilePlatform(log_path, latency=0.002, after_accept=after_accept)
    relay = OutboxRelay(
        make_sessionmaker(engine),
        platform.ports(),
        Prompts(),
        SystemClock(),
        OutboxConfig(worker_id=worker_id, concurrency=4),
        engine=engine,
    )
    await relay.run_forever(asyncio.Event())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else None))
