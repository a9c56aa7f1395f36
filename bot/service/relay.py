"""The outbox relay: the only code that calls a ChatPort.

**Claim** (``bot.service.ledger``: a short transaction, serialised across workers): due rows become
``in_flight`` under this worker's id, in *lanes*: one conversation's public posts in order, each
private reply or DM alone. A conversation with a public row in flight anywhere is not claimed again
until that row is recorded, so with any number of workers a conversation's posts go out in order, one
at a time, and a slot's message id is recorded before anyone can claim its next edit. **Deliver**
(here) with no transaction open, lanes
concurrently up to ``outbox.concurrency``. **Record** each outcome as soon as the platform answers:
a lane waits for its record before its next post, and the records of all lanes waiting at that moment
share one transaction (group commit). So a crash repeats at most the post in flight in each lane;
on Discord not even that (the row's nonce is enforced).

A worker that dies leaves its rows ``in_flight``: its restart (same id, see bot.service.workers) takes
them back at once; on PostgreSQL any worker takes over rows whose worker is gone; otherwise the lease
(renewed while the worker lives) runs out. Private rows are deleted once delivered, so the database
keeps no trail of who was told what.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import OutboxConfig
from bot.messages import Attachment, Message, Rendered, Visibility
from bot.metrics import NO_METRICS, Metrics
from bot.ports import ChatPort, Clock, DeliveryError
from bot.prompts import Prompts
from bot.service import workers
from bot.service.ledger import OFFLINE_RETRY_SECONDS, RELEASE, Claimed, Lane, OutboxLedger, Outcome

log = logging.getLogger("convene.relay")

DELIVERY_TIMEOUT_SECONDS = 120.0  # a platform call hanging longer counts as a failed attempt
PRIVATE_LINGER_SECONDS = 0.002  # a private reply's record waits this long to share a commit


class OutboxRelay:
    metrics: Metrics = NO_METRICS  # `convene run` sets its exporter

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        ports: Mapping[str, ChatPort],
        prompts: Prompts,
        clock: Clock,
        config: OutboxConfig | None = None,
        *,
        engine: AsyncEngine | None = None,
    ) -> None:
        self.sessions = sessions
        self.ports = dict(ports)
        self.prompts = prompts
        self.clock = clock
        self.config = config or OutboxConfig()
        self.concurrency = self.config.concurrency  # lanes delivering at once
        self.ledger = OutboxLedger(sessions, clock, self.config)
        bind = engine or sessions.kw.get("bind")
        assert isinstance(bind, AsyncEngine), "the relay needs the engine its sessions use"
        self.engine = bind
        self._start_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._lanes: set[asyncio.Task[None]] = set()
        self._marks: list[tuple[list[tuple[Claimed, Outcome]], asyncio.Future[None]]] = []
        self._marker: asyncio.Task[None] | None = None
        self._mark_now = asyncio.Event()  # a public post's record is waiting: no lingering
        self._offline_until: dict[str, float] = {}
        self._stopping = False
        self._claiming = 0  # claims under way in this process

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def identity(self) -> workers.WorkerIdentity | None:
        return self.ledger.identity

    @property
    def worker_id(self) -> str:
        return self.ledger.worker_id

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> str:
        """Take this process's worker identity and, with it, the rows a previous process of that
        identity had in flight (it is gone: the identity's lock was free). Idempotent."""
        if self.identity is None:
            async with self._start_lock:
                if self.identity is None:
                    identity = await workers.acquire(self.engine, self.config.worker_id)
                    try:
                        await self.ledger.take_back(identity.worker_id)
                    except BaseException:
                        await identity.release()
                        raise
                    self.ledger.identity = identity
                    log.info("outbox relay running as worker %s", identity.worker_id)
        return self.worker_id

    async def aclose(self) -> None:
        """Stop claiming, let lanes finish their post in flight, record, and free the identity."""
        self._stopping = True
        if self._lanes:
            await asyncio.wait(set(self._lanes), timeout=5)
        if self._marker is not None and not self._marker.done():
            await asyncio.wait({self._marker}, timeout=5)
        if self.ledger.identity is not None:
            await self.ledger.identity.release()
            self.ledger.identity = None

    async def run_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.start()
                break
            except Exception:
                log.exception("outbox relay could not start; retrying")
                await asyncio.sleep(self.config.poll_seconds)
        heartbeat = asyncio.create_task(self._heartbeat(stop), name="convene-relay-heartbeat")
        try:
            while not stop.is_set():
                self._wake.clear()
                more = False
                free = self.concurrency - len(self._lanes)
                # Under load, claim for several freed lanes at once rather than one claim per delivery.
                if free >= (max(1, self.concurrency // 8) if self._lanes else 1):
                    try:
                        lanes, more = await self._claim(free)
                    except Exception:
                        log.exception("outbox relay claim failed; retrying")
                        await asyncio.sleep(self.config.poll_seconds)
                        continue
                    for lane in lanes:
                        task = asyncio.create_task(self._run_lane(lane), name="convene-relay-lane")
                        self._lanes.add(task)
                        task.add_done_callback(self._lane_done)
                    # The rows looked at were not enough to fill the free lanes: look further now.
                    if more and 0 < len(lanes) < free:
                        continue
                try:
                    await asyncio.wait_for(self._wake.wait(), self.config.poll_seconds)
                except TimeoutError:
                    pass
        finally:
            heartbeat.cancel()
            self._stopping = True

    def _lane_done(self, task: asyncio.Task[None]) -> None:
        self._lanes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("an outbox relay lane failed: %s", type(task.exception()).__name__)
        self._wake.set()

    async def run_once(self) -> int:
        """Claim what is due (up to ``concurrency`` lanes), deliver it and record every outcome."""
        await self.start()
        lanes, _ = await self._claim(self.concurrency)
        await asyncio.gather(*(self._run_lane(lane) for lane in lanes))
        return sum(len(lane.items) for lane in lanes)

    async def drain(self, max_passes: int = 10_000) -> int:
        """Deliver until nothing is due and nothing is in flight here, including the background
        loop's lanes (tests, demo, console)."""
        total = 0
        for _ in range(max_passes):
            n = await self.run_once()
            total += n
            if n:
                continue
            if self._lanes:
                await asyncio.wait(set(self._lanes))
            elif self._claiming:
                await asyncio.sleep(0.001)  # the background loop is claiming: its lanes start next
            else:
                break
        return total

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        """Keep this worker's leases and identity lock alive while it lives."""
        every = max(0.5, self.config.lease_seconds / 3)
        while not stop.is_set():
            await asyncio.sleep(every)
            try:
                if self.identity is not None and not await self.identity.check():
                    log.error("relay worker %s lost its identity lock to another process", self.worker_id)
                await self.ledger.renew_leases()
            except Exception as err:
                log.warning("outbox relay heartbeat failed (%s); retrying", type(err).__name__)

    # --- claim ----------------------------------------------------------------------------------

    async def _claim(self, max_lanes: int) -> tuple[list[Lane], bool]:
        """Claim up to ``max_lanes`` lanes of the platforms that are connected; also says whether
        more due rows were left unseen."""
        mono = time.monotonic()
        platforms = [p for p in self.ports if self._offline_until.get(p, 0.0) <= mono]
        self._claiming += 1
        try:
            return await self.ledger.claim(platforms, max_lanes)
        finally:
            self._claiming -= 1

    # --- deliver --------------------------------------------------------------------------------

    async def _run_lane(self, lane: Lane) -> None:
        for i, item in enumerate(lane.items):
            lease = max(lane.lease_until, self.ledger.renewed_until or lane.lease_until)
            if self._stopping or self.clock.now() >= lease:
                # Stopping, or this worker stalled past its lease (another may have these rows now:
                # the release touches only rows still ours).
                await self._record([(later, RELEASE) for later in lane.items[i:]])
                return
            if item.resend:
                log.info(
                    "re-sending outbox row %d (%s, %s): it was in flight when its worker stopped",
                    item.seq,
                    item.conversation.platform.value,
                    item.visibility,
                )
            outcome = await self._attempt(item, lane.slots)
            self._count(item, outcome)
            if outcome.kind == "sent":
                await self._record([(item, outcome)])
                if item.slot and outcome.message_id:
                    lane.slots[item.slot] = outcome.message_id
                continue
            # Later posts of this conversation wait for this one, so a release keeps its order.
            await self._record([(item, outcome), *((later, RELEASE) for later in lane.items[i + 1 :])])
            return

    def _count(self, item: Claimed, outcome: Outcome) -> None:
        platform = item.conversation.platform.value
        if outcome.kind == "sent":
            self.metrics.delivered(platform)
        elif outcome.kind in ("failed", "offline"):
            self.metrics.delivery_failed(platform, "offline" if outcome.kind == "offline" else "failed")

    async def _attempt(self, item: Claimed, slots: dict[str, str]) -> Outcome:
        try:
            async with asyncio.timeout(DELIVERY_TIMEOUT_SECONDS):
                message_id = await self._deliver(item, slots)
        except DeliveryError as err:
            if err.offline:
                self._offline_until[item.conversation.platform.value] = (
                    time.monotonic() + OFFLINE_RETRY_SECONDS
                )
                return Outcome("offline", error=err)
            return Outcome("failed", error=err)
        except TimeoutError:
            return Outcome("failed", error=DeliveryError("timed out"))
        except Exception as err:  # an adapter bug must not stop the relay; retry with backoff
            log.warning("delivery of outbox row %d raised %s", item.seq, type(err).__name__)
            return Outcome("failed", error=DeliveryError(type(err).__name__))
        return Outcome("sent", message_id=message_id)

    async def _deliver(self, item: Claimed, slots: dict[str, str]) -> str | None:
        port = self.ports[item.conversation.platform.value]
        message = Message.from_json(item.body)
        rendered = self.prompts.render_message(message, port.escape)
        if message.chart is not None:
            png = await self._draw(message.chart)
            if png is None:
                # Without matplotlib nothing is posted: the results already carry the same figures.
                return None
            try:
                return await self._send(
                    port, item, replace(rendered, image=Attachment("consensus.png", png)), slots
                )
            except DeliveryError as err:
                if err.offline:
                    raise
                # A picture never holds a channel back: its text goes now, alone.
                log.warning(
                    "the picture of outbox row %d failed (%s); sending its text alone",
                    item.seq,
                    err.reason[:80],
                )
        return await self._send(port, item, rendered, slots)

    async def _draw(self, chart: Mapping[str, Any]) -> bytes | None:
        try:
            from bot.consensus.charts import render_round_chart
        except ImportError:
            return None
        texts = self.prompts.labels.get("chart", {})
        try:
            # Drawn at delivery, off the transaction and off the event loop.
            return await asyncio.to_thread(render_round_chart, chart, texts)
        except Exception as err:
            log.warning("a chart could not be drawn (%s)", type(err).__name__)
            return None

    async def _send(
        self, port: ChatPort, item: Claimed, rendered: Rendered, slots: dict[str, str]
    ) -> str | None:
        if item.visibility == Visibility.PRIVATE:
            assert item.recipient_id is not None
            await port.post_private(item.conversation, item.recipient_id, rendered, item.reply_handle)
            return None
        if item.visibility == Visibility.DIRECT:
            assert item.recipient_id is not None
            return await port.send_direct(
                item.conversation.workspace_id, item.recipient_id, rendered, key=item.nonce
            )
        if item.slot and item.slot in slots:
            await port.edit(item.conversation, slots[item.slot], rendered)
            return slots[item.slot]
        return await port.post(item.conversation, rendered, key=item.nonce)

    # --- record ---------------------------------------------------------------------------------

    async def _record(self, marks: list[tuple[Claimed, Outcome]]) -> None:
        """Record outcomes, waiting until they are committed. Marks arriving while a commit runs share
        the next one (group commit), so a record costs a lane about one commit and no more. Private
        replies linger ``PRIVATE_LINGER_SECONDS`` for company (the next click tends to arrive just
        after a reply, and finds the loop free); a public post is recorded at once."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._marks.append((marks, done))
        if any(item.public for item, _ in marks):
            self._mark_now.set()
        if self._marker is None or self._marker.done():
            self._marker = loop.create_task(self._write_marks(), name="convene-relay-marks")
        await done

    async def _write_marks(self) -> None:
        while self._marks:
            if not self._mark_now.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._mark_now.wait(), PRIVATE_LINGER_SECONDS)
            self._mark_now.clear()
            batch, self._marks = self._marks, []
            delay = 0.05
            while True:
                try:
                    async with self.sessions() as s, s.begin():
                        await self.ledger.record([mark for marks, _ in batch for mark in marks], s)
                    break
                except Exception as err:
                    # Never dropped: the platform has the post, so it must be recorded (else re-sent).
                    # The type only: a database error's text quotes the rows, content and recipients.
                    log.warning(
                        "recording %d delivery outcomes failed (%s); retrying", len(batch), type(err).__name__
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
            for _, done in batch:
                if not done.done():
                    done.set_result(None)
