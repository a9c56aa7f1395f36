"""Group commit: commands that arrive together (ballots) share one transaction.

One async transaction per click tops out near 1,600 a second on SQLite here; a hundred ballots per
transaction reach tens of thousands of rows a second. Each click still waits for *its* batch to
commit before it is acknowledged as stored, so "acknowledged means stored" holds. What a batch does
is the registered batch handler's business (``bot/service/handlers/voting.py``); this module only
gathers, commits and answers.

Several workers share one database, so the same request can reach two of them at once (a proxy
that retries, a load balancer). Its inbox key is claimed with ``INSERT ... ON CONFLICT DO NOTHING``
(``claim_requests``): the worker that does not get it answers it as the retry it is, and on
PostgreSQL it waits for the other's commit to know. A batch that fails all the same (a deadlock, a
bug in one command) is tried again one command at a time, so one bad command fails only itself and
nobody is told "not saved" for a ballot that would have been stored.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from bot.metrics import NO_METRICS, Metrics
from bot.persistence.db import dialect_insert
from bot.persistence.tables import InboxRow
from bot.service.errors import ServiceUnavailable

log = logging.getLogger("convene.ingest")

# Returns one answer per command, in order (or None: no answers), handed back by `submit`.
ApplyBatch = Callable[[AsyncSession, list[Any]], Awaitable[Sequence[Any] | None]]

ALONE_ATTEMPTS = 3  # a command tried alone after its batch failed: again on a conflict, then refused
RETRYABLE_STATES = {"40001", "40P01"}  # PostgreSQL: serialization failure, deadlock detected


async def claim_requests(s: AsyncSession, keys: Collection[str], day: dt.date) -> set[str]:
    """Record request ids as handled; returns those this transaction claimed first. The others were
    handled already, or are being handled by another worker (PostgreSQL waits for its commit: if it
    rolls back, the key is ours). Sorted, so two workers claiming overlapping keys never deadlock."""
    if not keys:
        return set()
    insert = dialect_insert(s.get_bind().dialect.name)
    stmt = (
        insert(InboxRow)
        .values([{"key": k, "day": day} for k in sorted(set(keys))])
        .on_conflict_do_nothing(index_elements=[InboxRow.key])
        .returning(InboxRow.key)
    )
    return set(await s.scalars(stmt))


def is_conflict(err: BaseException) -> bool:
    """A clash with another transaction that may pass when tried again."""
    if isinstance(err, IntegrityError | StaleDataError):
        return True
    if isinstance(err, DBAPIError):
        state = getattr(err.orig, "sqlstate", None) or getattr(err.orig, "pgcode", None)
        return state in RETRYABLE_STATES
    return False


def is_unreachable(err: BaseException) -> bool:
    """Storage itself is down: trying the commands one by one would only fail each again."""
    if isinstance(err, OSError | ConnectionError | TimeoutError):
        return True
    if isinstance(err, DBAPIError):
        return bool(err.connection_invalidated) or isinstance(err.orig, OSError | ConnectionError)
    return False


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
        self.split = 0  # batches that failed and were tried again one command at a time

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

    async def _attempt(self, commands: list[Any]) -> Sequence[Any] | None:
        async with self.sessions() as s, s.begin():
            return await self.apply(s, commands)

    async def _commit(self, batch: list[tuple[Any, asyncio.Future[Any]]]) -> None:
        try:
            answers = await self._attempt([command for command, _ in batch])
        except Exception as err:
            if len(batch) > 1 and not is_unreachable(err):
                name = type(err).__name__
                log.warning("a batch of %d commands failed (%s): each is tried alone", len(batch), name)
                self.split += 1
                await self._each_alone(batch)
                return
            if len(batch) == 1 and is_conflict(err):
                await self._each_alone(batch)
                return
            log.warning("a batch of %d commands failed: %s", len(batch), type(err).__name__)
            _fail(batch, err)
            return
        self.batches += 1
        self.metrics.ballot_batch(len(batch))
        for i, (_, fut) in enumerate(batch):
            if not fut.done():
                fut.set_result(answers[i] if answers is not None else None)
        self.notify()

    async def _each_alone(self, batch: list[tuple[Any, asyncio.Future[Any]]]) -> None:
        for n, (command, fut) in enumerate(batch):
            for attempt in range(ALONE_ATTEMPTS):
                try:
                    answers = await self._attempt([command])
                except Exception as err:
                    if is_unreachable(err):
                        log.warning("storage failed: %s", type(err).__name__)
                        _fail(batch[n:], err)
                        return
                    if is_conflict(err) and attempt + 1 < ALONE_ATTEMPTS:
                        continue
                    log.warning("a command failed alone: %s", type(err).__name__)
                    _fail([(command, fut)], err)
                    break
                self.batches += 1
                if not fut.done():
                    fut.set_result(answers[0] if answers is not None else None)
                self.notify()
                break


def _fail(batch: list[tuple[Any, asyncio.Future[Any]]], err: BaseException) -> None:
    for _, fut in batch:
        if not fut.done():
            fut.set_exception(ServiceUnavailable(type(err).__name__))
