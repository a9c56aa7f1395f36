"""The outbox relay: the only code that calls a ChatPort.

**Claim** (a short transaction, serialised across workers): due rows become ``in_flight`` under this
worker's id, in *lanes*: one conversation's public posts in order, each private reply or DM alone. A
conversation with a public row in flight anywhere is not claimed again until that row is recorded, so
with any number of workers a conversation's posts go out in order, one at a time, and a slot's message
id is recorded before anyone can claim its next edit. **Deliver** with no transaction open, lanes
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
import datetime as dt
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, cast

from sqlalchemy import Row, Table, and_, bindparam, delete, exists, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from bot.config import OutboxConfig
from bot.domain.phases import OPEN_PHASES
from bot.messages import Attachment, Message, Rendered, Visibility
from bot.persistence.tables import OutboxRow, RoundRow, SlotRow
from bot.ports import ChatPort, Clock, DeliveryError
from bot.prompts import Prompts
from bot.refs import ConversationRef, Platform
from bot.service import workers

log = logging.getLogger("convene.relay")

PUBLIC = Visibility.PUBLIC.value
OFFLINE_RETRY_SECONDS = 1.0  # a client that is not connected is asked again this soon, free of charge
DELIVERY_TIMEOUT_SECONDS = 120.0  # a platform call hanging longer counts as a failed attempt
LIVENESS_CHECK_SECONDS = 1.0  # how often a claim asks PostgreSQL which workers are alive
PRIVATE_LINGER_SECONDS = 0.002  # a private reply's record waits this long to share a commit

_T = cast(Table, OutboxRow.__table__)  # core statements: bulk updates by primary key


@dataclass(frozen=True, slots=True)
class _Claimed:
    seq: int
    round_id: str | None
    conversation: ConversationRef
    visibility: str
    recipient_id: str | None
    reply_handle: str | None
    body: dict[str, Any]
    slot: str | None
    attempts: int
    nonce: str | None
    resend: bool
    failing_since: dt.datetime | None

    @property
    def public(self) -> bool:
        return self.visibility == PUBLIC


@dataclass(frozen=True, slots=True)
class _Outcome:
    kind: str  # sent | failed | offline | release
    message_id: str | None = None
    error: DeliveryError | None = None


_RELEASE = _Outcome("release")


@dataclass
class _Lane:
    items: list[_Claimed]
    lease_until: dt.datetime
    slots: dict[str, str] = field(default_factory=dict)  # slot -> message id, preloaded at claim


class OutboxRelay:
    lane_rows = 50  # public rows of one conversation claimed together
    claim_rows = 500  # due rows looked at per claim

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
        self.give_up_after = dt.timedelta(hours=self.config.public_give_up_hours)
        bind = engine or sessions.kw.get("bind")
        assert isinstance(bind, AsyncEngine), "the relay needs the engine its sessions use"
        self.engine = bind
        self.identity: workers.WorkerIdentity | None = None
        self._start_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._lanes: set[asyncio.Task[None]] = set()
        self._marks: list[tuple[list[tuple[_Claimed, _Outcome]], asyncio.Future[None]]] = []
        self._marker: asyncio.Task[None] | None = None
        self._mark_now = asyncio.Event()  # a public post's record is waiting: no lingering
        self._offline_until: dict[str, float] = {}
        self._next_liveness = 0.0
        self._stopping = False
        self._claiming = 0  # claims under way in this process
        self._renewed_until: dt.datetime | None = None  # every lease of ours runs at least until then

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def worker_id(self) -> str:
        assert self.identity is not None, "the relay has not started"
        return self.identity.worker_id

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
                        await self._take_back(identity.worker_id)
                    except BaseException:
                        await identity.release()
                        raise
                    self.identity = identity
                    log.info("outbox relay running as worker %s", identity.worker_id)
        return self.identity.worker_id

    async def aclose(self) -> None:
        """Stop claiming, let lanes finish their post in flight, record, and free the identity."""
        self._stopping = True
        if self._lanes:
            await asyncio.wait(set(self._lanes), timeout=5)
        if self._marker is not None and not self._marker.done():
            await asyncio.wait({self._marker}, timeout=5)
        if self.identity is not None:
            await self.identity.release()
            self.identity = None

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
                await self._renew_leases()
            except Exception as err:
                log.warning("outbox relay heartbeat failed (%s); retrying", type(err).__name__)

    async def _renew_leases(self) -> None:
        lease = self.clock.now() + dt.timedelta(seconds=self.config.lease_seconds)
        async with self.sessions() as s, s.begin():
            await s.execute(
                update(_T)
                .where(_T.c.status == "in_flight", _T.c.claimed_by == self.worker_id)
                .values(lease_until=lease)
            )
        self._renewed_until = lease

    # --- claim ----------------------------------------------------------------------------------

    async def _take_back(self, me: str) -> None:
        async with self.sessions() as s, s.begin():
            rows = list(
                await s.execute(
                    select(OutboxRow.seq, OutboxRow.visibility).where(
                        OutboxRow.status == "in_flight", OutboxRow.claimed_by == me
                    )
                )
            )
            if rows:
                await self._requeue(s, [seq for seq, _ in rows])
                public = sum(1 for _, vis in rows if vis == PUBLIC)
                log.warning(
                    "relay worker %s took back %d outbox rows (%d public) it had in flight when it stopped",
                    me,
                    len(rows),
                    public,
                )

    @staticmethod
    async def _requeue(s: AsyncSession, seqs: list[int]) -> None:
        """In flight with a worker that is gone: pending again, to be re-sent in order."""
        await s.execute(
            update(_T)
            .where(_T.c.seq.in_(seqs), _T.c.status == "in_flight")
            .values(status="pending", claimed_by=None, lease_until=None, next_attempt_at=None, resend=True)
        )

    async def _take_over(self, s: AsyncSession, now: dt.datetime) -> None:
        """Rows in flight with other workers whose lease ran out, or (PostgreSQL) whose worker is gone."""
        held = list(
            await s.execute(
                select(OutboxRow.seq, OutboxRow.claimed_by, OutboxRow.lease_until).where(
                    OutboxRow.status == "in_flight",
                    or_(OutboxRow.claimed_by.is_(None), OutboxRow.claimed_by != self.worker_id),
                )
            )
        )
        if not held:
            return
        live: set[int] | None = None
        if time.monotonic() >= self._next_liveness and self.identity is not None:
            self._next_liveness = time.monotonic() + LIVENESS_CHECK_SECONDS
            live = await self.identity.live_workers()
        gone: dict[str, list[int]] = {}
        reasons: dict[str, str] = {}
        for seq, owner, lease in held:
            owner = owner or "?"
            if lease is None or lease < now:
                reasons[owner] = "its lease ran out"
            elif live is not None and workers.worker_key(owner) not in live:
                reasons.setdefault(owner, "it is gone")
            else:
                continue
            gone.setdefault(owner, []).append(seq)
        for owner, seqs in gone.items():
            await self._requeue(s, seqs)
            log.warning(
                "relay worker %s took over %d outbox rows of worker %s: %s",
                self.worker_id,
                len(seqs),
                owner,
                reasons[owner],
            )

    async def _claim(self, max_lanes: int) -> tuple[list[_Lane], bool]:
        """Claim up to ``max_lanes`` lanes; also says whether more due rows were left unseen."""
        self._claiming += 1
        try:
            return await self._claim_lanes(max_lanes)
        finally:
            self._claiming -= 1

    async def _claim_lanes(self, max_lanes: int) -> tuple[list[_Lane], bool]:
        now = self.clock.now()
        mono = time.monotonic()
        platforms = [p for p in self.ports if self._offline_until.get(p, 0.0) <= mono]
        if not platforms:
            return [], False
        async with self.sessions() as s, s.begin():
            if s.get_bind().dialect.name == "postgresql":
                # One claim at a time across workers, so two never split a conversation between them.
                await s.execute(text("SELECT pg_advisory_xact_lock(:a, 0)"), {"a": workers.CLAIM_LOCK_CLASS})
            await self._take_over(s, now)
            b = aliased(OutboxRow)
            same_conversation = and_(
                b.channel_id == OutboxRow.channel_id,
                b.platform == OutboxRow.platform,
                b.workspace_id == OutboxRow.workspace_id,
                b.visibility == PUBLIC,
            )
            # A public post waits while an earlier one of its conversation is in flight (anywhere) or
            # waiting out a backoff: so the order of a release survives a 429, an outage and a crash.
            held_back = exists().where(
                same_conversation,
                or_(
                    b.status == "in_flight",
                    and_(b.status == "pending", b.next_attempt_at > now, b.seq < OutboxRow.seq),
                ),
            )
            limit = min(self.claim_rows, max_lanes + self.lane_rows)
            stmt = (
                select(_T)
                .where(
                    OutboxRow.status == "pending",
                    OutboxRow.platform.in_(platforms),
                    or_(OutboxRow.next_attempt_at.is_(None), OutboxRow.next_attempt_at <= now),
                    or_(OutboxRow.visibility != PUBLIC, ~held_back),
                )
                .order_by(OutboxRow.seq)
                .limit(limit)
            )
            rows = list(await s.execute(stmt))  # plain rows: cheaper than ORM objects, and read-only
            more = len(rows) == limit
            lanes = self._lanes_of(rows, max_lanes)
            if not lanes:
                return [], more
            claimed: list[int] = []
            superseded: list[int] = []
            for lane in lanes:
                # Several pending updates of one slot (a card edited in a burst) coalesce to the newest.
                newest: dict[str, int] = {}
                for row in lane:
                    if row.slot:
                        newest[row.slot] = max(newest.get(row.slot, 0), row.seq)
                for row in lane:
                    (superseded if row.slot and newest[row.slot] != row.seq else claimed).append(row.seq)
            lease = now + dt.timedelta(seconds=self.config.lease_seconds)
            await s.execute(
                update(_T)
                .where(_T.c.seq.in_(claimed))
                .values(status="in_flight", claimed_by=self.worker_id, lease_until=lease)
            )
            if superseded:
                await s.execute(
                    update(_T)
                    .where(_T.c.seq.in_(superseded))
                    .values(status="superseded", claimed_by=None, lease_until=None, resend=False)
                )
            skip = set(superseded)
            wanted = [row.slot for lane in lanes for row in lane if row.slot and row.seq not in skip]
            slots: dict[str, str] = {}
            if wanted:
                found = await s.execute(
                    select(SlotRow.slot, SlotRow.message_id).where(SlotRow.slot.in_(wanted))
                )
                slots = {str(slot): str(mid) for slot, mid in found}
        out = []
        for lane in lanes:
            items = [_claimed(row) for row in lane if row.seq not in skip]
            known = {i.slot: slots[i.slot] for i in items if i.slot and i.slot in slots}
            out.append(_Lane(items, lease, known))
        return out, more

    def _lanes_of(self, rows: list[Row[Any]], max_lanes: int) -> list[list[Row[Any]]]:
        """Rows (in seq order) as lanes, the lanes in the order of their first row."""
        lanes: list[list[Row[Any]]] = []
        public: dict[tuple[str, str, str], list[Row[Any]]] = {}
        for row in rows:
            if row.visibility != PUBLIC:
                if len(lanes) < max_lanes:
                    lanes.append([row])
                continue
            key = (row.platform, row.workspace_id, row.channel_id)
            lane = public.get(key)
            if lane is None:
                if len(lanes) >= max_lanes:
                    continue
                lane = public[key] = []
                lanes.append(lane)
            if len(lane) < self.lane_rows:
                lane.append(row)
        return lanes

    # --- deliver --------------------------------------------------------------------------------

    async def _run_lane(self, lane: _Lane) -> None:
        for i, item in enumerate(lane.items):
            lease = max(lane.lease_until, self._renewed_until or lane.lease_until)
            if self._stopping or self.clock.now() >= lease:
                # Stopping, or this worker stalled past its lease (another may have these rows now:
                # the release touches only rows still ours).
                await self._record([(later, _RELEASE) for later in lane.items[i:]])
                return
            if item.resend:
                log.info(
                    "re-sending outbox row %d (%s, %s): it was in flight when its worker stopped",
                    item.seq,
                    item.conversation.platform.value,
                    item.visibility,
                )
            outcome = await self._attempt(item, lane.slots)
            if outcome.kind == "sent":
                await self._record([(item, outcome)])
                if item.slot and outcome.message_id:
                    lane.slots[item.slot] = outcome.message_id
                continue
            # Later posts of this conversation wait for this one, so a release keeps its order.
            await self._record([(item, outcome), *((later, _RELEASE) for later in lane.items[i + 1 :])])
            return

    async def _attempt(self, item: _Claimed, slots: dict[str, str]) -> _Outcome:
        try:
            async with asyncio.timeout(DELIVERY_TIMEOUT_SECONDS):
                message_id = await self._deliver(item, slots)
        except DeliveryError as err:
            if err.offline:
                self._offline_until[item.conversation.platform.value] = (
                    time.monotonic() + OFFLINE_RETRY_SECONDS
                )
                return _Outcome("offline", error=err)
            return _Outcome("failed", error=err)
        except TimeoutError:
            return _Outcome("failed", error=DeliveryError("timed out"))
        except Exception as err:  # an adapter bug must not stop the relay; retry with backoff
            log.warning("delivery of outbox row %d raised %s", item.seq, type(err).__name__)
            return _Outcome("failed", error=DeliveryError(type(err).__name__))
        return _Outcome("sent", message_id=message_id)

    async def _deliver(self, item: _Claimed, slots: dict[str, str]) -> str | None:
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
        self, port: ChatPort, item: _Claimed, rendered: Rendered, slots: dict[str, str]
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

    async def _record(self, marks: list[tuple[_Claimed, _Outcome]]) -> None:
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
                        await self._apply([mark for marks, _ in batch for mark in marks], s)
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

    async def _apply(self, marks: list[tuple[_Claimed, _Outcome]], s: AsyncSession) -> None:
        now = self.clock.now()
        me = self.worker_id
        delivered_privately: list[int] = []
        sent: list[dict[str, Any]] = []
        new_slots: dict[str, str] = {}
        pending: list[dict[str, Any]] = []  # failed (retry later), offline or released
        failed_for_good: list[dict[str, Any]] = []
        failures = [(item, o) for item, o in marks if o.kind == "failed"]
        ended = await self._ended_rounds(s, {item.round_id for item, _ in failures if item.public})
        for item, outcome in marks:
            if outcome.kind == "sent":
                if not item.public:
                    delivered_privately.append(item.seq)  # no trail of who was told what
                    continue
                sent.append({"b_seq": item.seq, "b_message_id": outcome.message_id})
                if item.slot and outcome.message_id:
                    new_slots.setdefault(item.slot, outcome.message_id)
            elif outcome.kind == "release":
                pending.append(self._pending(item, attempts=item.attempts, at=None, error=None, failing=None))
            elif outcome.kind == "offline":
                # Not an attempt: our client is not connected. Only the stall clock runs.
                failing = (item.failing_since or now) if item.public else None
                at = now + dt.timedelta(seconds=OFFLINE_RETRY_SECONDS)
                pending.append(
                    self._pending(item, attempts=item.attempts, at=at, error=None, failing=failing)
                )
            else:
                assert outcome.error is not None
                err = outcome.error
                attempts = item.attempts + 1
                failing = (item.failing_since or now) if item.public else None
                if item.public:
                    # Public posts retry for the life of their round, then public_give_up_hours more.
                    round_over = item.round_id is None or item.round_id in ended
                    too_long = failing is not None and now - failing > self.give_up_after
                    give_up = err.permanent or (round_over and too_long)
                    if item.failing_since is None and not give_up:
                        log.warning(
                            "public outbox row %d (%s) failed: %s; retrying while its round is open",
                            item.seq,
                            item.conversation.platform.value,
                            err.reason[:80],
                        )
                else:
                    give_up = err.permanent or attempts >= self.config.max_attempts
                if give_up:
                    log.warning("outbox row %d failed for good: %s", item.seq, err.reason[:80])
                    failed_for_good.append(
                        {
                            "b_seq": item.seq,
                            "b_me": me,
                            "b_attempts": attempts,
                            "b_error": err.reason[:200],
                            "b_failing": failing,
                            # Keep no private content once it cannot be delivered.
                            "b_body": item.body if item.public else {},
                        }
                    )
                    continue
                backoff = min(
                    self.config.backoff_max_seconds, self.config.backoff_base_seconds * 2 ** (attempts - 1)
                ) * random.uniform(0.8, 1.2)
                at = now + dt.timedelta(seconds=max(backoff, err.retry_after or 0.0))
                pending.append(
                    self._pending(item, attempts=attempts, at=at, error=err.reason, failing=failing)
                )
        if delivered_privately:
            await s.execute(delete(_T).where(_T.c.seq.in_(delivered_privately)))
        if sent:
            await s.execute(
                update(_T)
                .where(_T.c.seq == bindparam("b_seq"))
                .values(
                    status="sent",
                    message_id=bindparam("b_message_id"),
                    claimed_by=None,
                    lease_until=None,
                    next_attempt_at=None,
                    resend=False,
                    failing_since=None,
                ),
                sent,
            )
        if new_slots:
            dialect = postgresql if s.get_bind().dialect.name == "postgresql" else sqlite
            await s.execute(
                dialect.insert(SlotRow)
                .values([{"slot": slot, "message_id": mid} for slot, mid in new_slots.items()])
                .on_conflict_do_nothing(index_elements=["slot"])
            )
        # Only rows still ours: one taken over by another worker meanwhile is that worker's now.
        if pending:
            await s.execute(
                update(_T)
                .where(_T.c.seq == bindparam("b_seq"), _T.c.claimed_by == bindparam("b_me"))
                .values(
                    status="pending",
                    claimed_by=None,
                    lease_until=None,
                    attempts=bindparam("b_attempts"),
                    next_attempt_at=bindparam("b_at"),
                    last_error=func.coalesce(
                        bindparam("b_error", type_=_T.c.last_error.type), _T.c.last_error
                    ),
                    failing_since=bindparam("b_failing"),
                ),
                pending,
            )
        if failed_for_good:
            await s.execute(
                update(_T)
                .where(_T.c.seq == bindparam("b_seq"), _T.c.claimed_by == bindparam("b_me"))
                .values(
                    status="failed",
                    claimed_by=None,
                    lease_until=None,
                    resend=False,
                    attempts=bindparam("b_attempts"),
                    last_error=bindparam("b_error"),
                    failing_since=bindparam("b_failing"),
                    body=bindparam("b_body"),
                ),
                failed_for_good,
            )

    def _pending(
        self,
        item: _Claimed,
        *,
        attempts: int,
        at: dt.datetime | None,
        error: str | None,
        failing: dt.datetime | None,
    ) -> dict[str, Any]:
        return {
            "b_seq": item.seq,
            "b_me": self.worker_id,
            "b_attempts": attempts,
            "b_at": at,
            "b_error": error[:200] if error else None,
            "b_failing": failing if failing is not None else item.failing_since,
        }

    @staticmethod
    async def _ended_rounds(s: AsyncSession, round_ids: set[str | None]) -> set[str]:
        """Of these rounds, those closed, cancelled or gone (their public posts may give up)."""
        ids = {r for r in round_ids if r}
        if not ids:
            return set()
        open_ids = set(
            await s.scalars(
                select(RoundRow.id).where(
                    RoundRow.id.in_(ids), RoundRow.phase.in_([p.value for p in OPEN_PHASES])
                )
            )
        )
        return ids - open_ids


def _claimed(row: Row[Any]) -> _Claimed:
    return _Claimed(
        seq=row.seq,
        round_id=row.round_id,
        conversation=ConversationRef(Platform(row.platform), row.workspace_id, row.channel_id),
        visibility=row.visibility,
        recipient_id=row.recipient_id,
        reply_handle=row.reply_handle,
        body=row.body,
        slot=row.slot,
        attempts=row.attempts,
        nonce=row.nonce,
        resend=row.resend,
        failing_since=row.failing_since,
    )
