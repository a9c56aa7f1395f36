"""Group commit: commands that arrive together (ballots) share one transaction.

One async transaction per click tops out near 1,600 a second on SQLite here; a hundred ballots per
transaction reach tens of thousands of rows a second. Each click still waits for *its* batch to
commit before it is acknowledged as stored, so "acknowledged means stored" holds. What a batch does
is the registered batch handler's business (``bot/service/handlers/voting.py``); this module only
gathers, commits and answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.metrics import NO_METRICS, Metrics
from bot.service.errors import ServiceUnavailable

log = logging.getLogger("convene.ingest")

# Returns one answer per command, in order (or None: no answers), handed back by `submit`.
ApplyBatch = Callable[[AsyncSession, list[Any]], Awaitable[Sequence[Any] | None]]


class GroupCommit:
    metrics: Metrics = NO_METRICS  # `convene run` sets its exporter

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        apply: ApplyBatch,
        notify: Callable[[], None],
        batch_max: int,
        wait_seconds: float,
    ) -> None:
        self.sessions = sessions
        self.apply = apply
        self.notify = notify
        self.batch_max = batch_max
        self.wait = wait_seconds
        self._queue: list[tuple[Any, asyncio.Future[Any]]] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # for benchmarks and tests: how many transactions served the commands

    async def submit(self, command: Any) -> Any:
        """Queue ``command``; returns its answer once its batch has committed."""
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run(), name="convene-group-commit")
        fut: asyncio.Future[Any] = loop.create_future()
        self._queue.append((command, fut))
        assert self._wake is not None
        self._wake.set()
        return await fut

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._task = None

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            # Clicks arriving together wait a moment to share a commit; a lone click commits at
            # once (it is waiting for its answer), and what arrives meanwhile forms the next batch.
            if self.wait and 1 < len(self._queue) < self.batch_max:
                await asyncio.sleep(self.wait)
            while self._queue:
                batch = self._queue[: self.batch_max]
                del self._queue[: self.batch_max]
                await self._commit(batch)

    async def _commit(self, batch: list[tuple[Any, asyncio.Future[Any]]]) -> None:
        try:
            async with self.sessions() as s, s.begin():
                answers = await self.apply(s, [command for command, _ in batch])
        except Exception as err:
            log.warning("a batch of %d commands failed: %s", len(batch), type(err).__name__)
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(ServiceUnavailable(type(err).__name__))
            return
        self.batches += 1
        self.metrics.ballot_batch(len(batch))
        for i, (_, fut) in enumerate(batch):
            if not fut.done():
                fut.set_result(answers[i] if answers is not None else None)
        self.notify()
