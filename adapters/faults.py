"""Faults stay small: one adapter's failure is logged and that adapter starts again, the others carry on.

`supervise` runs one adapter (``run_slack``, ``run_discord``) until ``stop`` is set. Whatever ends it
early (a gateway frame discord.py cannot parse, a dropped connection, a bug) is logged by `fault`
(the exception's type and where it was raised: never its message, which may quote a payload or a
user id) and the adapter is started again after an exponential backoff. Only a `ConfigError` on the
first start ends `convene run` (a missing secret or a refused token: no restart can fix it); a later
one is logged and retried at the longest backoff, so a token revoked while Slack is serving does
not stop Slack.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import PurePath

from bot.config import ConfigError

log = logging.getLogger("convene")


def fault(err: BaseException) -> str:
    """``"KeyError at discord/interactions.py:219"``: what failed and where, safe to log. The message
    is left out on purpose (``invalid literal for int() with base 10: '<payload>'``)."""
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return type(err).__name__
    path = PurePath(tb.tb_frame.f_code.co_filename)
    return f"{type(err).__name__} at {'/'.join(path.parts[-2:])}:{tb.tb_lineno}"


@dataclass(frozen=True)
class Backoff:
    first: float = 1.0  # seconds before the first restart
    longest: float = 60.0
    settled: float = 60.0  # a run at least this long starts the backoff again from ``first``
    jitter: float = 0.1  # +-10 %, so several processes do not reconnect in step

    def after(self, delay: float) -> float:
        return min(delay * 2, self.longest)

    def jittered(self, delay: float) -> float:
        return delay * (1 + random.uniform(-self.jitter, self.jitter))


async def supervise(
    name: str,
    run: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    backoff: Backoff | None = None,
    *,
    on_restart: Callable[[BaseException | None], None] | None = None,
) -> None:
    """Run ``run()`` until ``stop`` is set, starting it again whenever it fails or returns early.
    ``on_restart`` (tests, benchmarks) hears of each restart with its cause (None: returned)."""
    backoff = backoff or Backoff()
    loop = asyncio.get_running_loop()
    delay = backoff.first
    first = True
    while not stop.is_set():
        started = loop.time()
        cause: BaseException | None = None
        try:
            await run()
        except ConfigError as err:
            if first:
                raise
            cause = err
            delay = backoff.longest
            log.error("%s: %s; trying again in %.0f s", name, err, delay)
        except Exception as err:
            cause = err
            log.error("%s: the adapter failed (%s); starting it again", name, fault(err))
        else:
            if stop.is_set():
                return
            log.warning("%s: the adapter stopped by itself; starting it again", name)
        first = False
        if on_restart is not None:
            on_restart(cause)
        if loop.time() - started >= backoff.settled and not isinstance(cause, ConfigError):
            delay = backoff.first
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), backoff.jittered(delay))
        delay = backoff.after(delay)
