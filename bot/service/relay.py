"""The outbox relay: the only code that calls a ChatPort.

claim (short transaction) -> deliver (no transaction held across the network) -> mark (recorded in
the next pass's claim transaction, or within ``mark_delay`` when nothing else comes). A crash
between commit and delivery loses nothing: the row is still pending, or in flight with a lease that
runs out. Private rows are deleted once delivered, so the database keeps no trail of who was told
what.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, replace

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import OutboxConfig
from bot.messages import Attachment, Message, Visibility
from bot.persistence.tables import OutboxRow, SlotRow
from bot.ports import ChatPort, Clock, DeliveryError
from bot.prompts import Prompts
from bot.refs import ConversationRef, Platform

log = logging.getLogger("convene.relay")


@dataclass(frozen=True, slots=True)
class _Claimed:
    seq: int
    conversation: ConversationRef
    visibility: str
    recipient_id: str | None
    reply_handle: str | None
    body: dict[str, object]
    slot: str | None
    attempts: int


@dataclass(frozen=True, slots=True)
class _Outcome:
    kind: str  # sent | failed | release
    message_id: str | None = None
    error: DeliveryError | None = None


class OutboxRelay:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        ports: Mapping[str, ChatPort],
        prompts: Prompts,
        clock: Clock,
        config: OutboxConfig | None = None,
        *,
        concurrency: int = 8,
    ) -> None:
        self.sessions = sessions
        self.ports = dict(ports)
        self.prompts = prompts
        self.clock = clock
        self.config = config or OutboxConfig()
        self.concurrency = concurrency  # deliveries in flight at once, across conversations
        self.mark_delay = 0.05  # seconds an outcome may wait to be recorded when nothing else comes
        self._unmarked: list[tuple[_Claimed, _Outcome]] = []
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if await self.run_once() >= self.batch:
                    continue  # a full pass: more is waiting, so go again now rather than after a poll
                # Outcomes are recorded by the next claim, or after a short pause when nothing comes.
                timeout = self.mark_delay if self._unmarked else self.config.poll_seconds
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout)
                except TimeoutError:
                    await self.flush()
                self._wake.clear()
            except Exception:
                log.exception("outbox relay pass failed; retrying")
                await asyncio.sleep(self.config.poll_seconds)

    async def drain(self, max_passes: int = 100) -> int:
        """Deliver until nothing is due, and record every outcome (tests, demo, shutdown)."""
        total = 0
        for _ in range(max_passes):
            n = await self.run_once()
            total += n
            if n == 0:
                break
        await self.flush()
        return total

    async def flush(self) -> None:
        """Record the outcomes of delivered rows now, in their own transaction."""
        if self._unmarked:
            async with self.sessions() as s, s.begin():
                await self._apply_marks(s)

    batch = 50  # rows claimed per pass

    async def run_once(self, limit: int | None = None) -> int:
        """One pass: claim, deliver (concurrently across conversations, in order within one), then
        mark every outcome in one transaction."""
        claimed, slots = await self._claim(limit or self.batch)
        if not claimed:
            return 0
        lanes: dict[tuple[ConversationRef, int], list[_Claimed]] = {}
        for item in claimed:
            # Public posts keep their order per conversation; private replies are independent.
            lane = 0 if item.visibility == Visibility.PUBLIC else item.seq
            lanes.setdefault((item.conversation, lane), []).append(item)
        outcomes: dict[int, _Outcome] = {}
        gate = asyncio.Semaphore(self.concurrency)

        async def run_lane(items: list[_Claimed]) -> None:
            async with gate:
                for i, item in enumerate(items):
                    try:
                        message_id = await self._deliver(item, slots)
                    except DeliveryError as err:
                        outcomes[item.seq] = _Outcome("failed", error=err)
                    except Exception as err:  # an adapter bug must not stop the relay; retry with backoff
                        log.warning("delivery of outbox row %d raised %s", item.seq, type(err).__name__)
                        outcomes[item.seq] = _Outcome("failed", error=DeliveryError(type(err).__name__))
                    else:
                        outcomes[item.seq] = _Outcome("sent", message_id=message_id)
                        continue
                    for later in items[i + 1 :]:
                        outcomes[later.seq] = _Outcome("release")  # keep the order within a conversation
                    return

        await asyncio.gather(*(run_lane(items) for items in lanes.values()))
        # Recorded in the next pass's claim transaction (or by flush): no database work lands
        # right after a delivery, when the next click tends to arrive, and one transaction a pass.
        self._unmarked.extend((item, outcomes[item.seq]) for item in claimed if item.seq in outcomes)
        return len(claimed)

    async def _claim(self, limit: int) -> tuple[list[_Claimed], dict[str, str]]:
        now = self.clock.now()
        async with self.sessions() as s, s.begin():
            await self._apply_marks(s)  # first, so slots posted last pass are known below
            stmt = (
                select(OutboxRow)
                .where(
                    OutboxRow.platform.in_(list(self.ports)),
                    or_(
                        (OutboxRow.status == "pending")
                        & or_(OutboxRow.next_attempt_at.is_(None), OutboxRow.next_attempt_at <= now),
                        (OutboxRow.status == "in_flight") & (OutboxRow.lease_until < now),
                    ),
                )
                .order_by(OutboxRow.seq)
                .limit(limit)
            )
            if s.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            rows = list(await s.scalars(stmt))
            if not rows:
                return [], {}
            # A public post waiting out a backoff holds back later posts to its conversation, so the order
            # of a release (header, then ideas in their shuffled order) survives a 429.
            waiting = await s.execute(
                select(
                    OutboxRow.platform, OutboxRow.workspace_id, OutboxRow.channel_id, func.min(OutboxRow.seq)
                )
                .where(
                    OutboxRow.status == "pending",
                    OutboxRow.next_attempt_at > now,
                    OutboxRow.visibility == Visibility.PUBLIC.value,
                )
                .group_by(OutboxRow.platform, OutboxRow.workspace_id, OutboxRow.channel_id)
            )
            blocked = {(p, w, ch): seq for p, w, ch, seq in waiting}
            rows = [
                r
                for r in rows
                if r.visibility != Visibility.PUBLIC.value
                or r.seq < blocked.get((r.platform, r.workspace_id, r.channel_id), r.seq + 1)
            ]
            # Several pending updates of one slot (a card edited in a burst) coalesce to the newest.
            newest: dict[str, int] = {}
            for row in rows:
                if row.slot:
                    newest[row.slot] = max(newest.get(row.slot, 0), row.seq)
            out = []
            lease = now + dt.timedelta(seconds=self.config.lease_seconds)
            for row in rows:
                if row.slot and newest[row.slot] != row.seq:
                    row.status = "superseded"
                    continue
                row.status = "in_flight"
                row.lease_until = lease
                out.append(
                    _Claimed(
                        row.seq,
                        ConversationRef(Platform(row.platform), row.workspace_id, row.channel_id),
                        row.visibility,
                        row.recipient_id,
                        row.reply_handle,
                        row.body,
                        row.slot,
                        row.attempts,
                    )
                )
            wanted = [item.slot for item in out if item.slot]
            slots: dict[str, str] = {}
            if wanted:
                found = await s.execute(
                    select(SlotRow.slot, SlotRow.message_id).where(SlotRow.slot.in_(wanted))
                )
                slots = {str(row[0]): str(row[1]) for row in found}
        return out, slots

    async def _deliver(self, item: _Claimed, slots: dict[str, str]) -> str | None:
        port = self.ports[item.conversation.platform.value]
        message = Message.from_json(item.body)
        rendered = self.prompts.render_message(message, port.escape)
        if message.chart is not None:
            from bot.consensus.charts import render_round_chart

            # Drawn at delivery, off the transaction and off the event loop. Without matplotlib
            # nothing is posted: the results already carry the same figures as text.
            texts = self.prompts.labels.get("chart", {})
            png = await asyncio.to_thread(render_round_chart, message.chart, texts)
            if png is None:
                return None
            rendered = replace(rendered, image=Attachment("consensus.png", png))
        if item.visibility == Visibility.PRIVATE:
            assert item.recipient_id is not None
            await port.post_private(item.conversation, item.recipient_id, rendered, item.reply_handle)
            return None
        if item.visibility == Visibility.DIRECT:
            assert item.recipient_id is not None
            return await port.send_direct(item.conversation.workspace_id, item.recipient_id, rendered)
        if item.slot and item.slot in slots:
            await port.edit(item.conversation, slots[item.slot], rendered)
            return slots[item.slot]
        return await port.post(item.conversation, rendered)

    async def _apply_marks(self, s: AsyncSession) -> None:
        marks, self._unmarked = self._unmarked, []
        if not marks:
            return
        now = self.clock.now()
        found = await s.scalars(select(OutboxRow).where(OutboxRow.seq.in_([item.seq for item, _ in marks])))
        rows = {r.seq: r for r in found}
        slot_names = [item.slot for item, _ in marks if item.slot]
        known = set(await s.scalars(select(SlotRow.slot).where(SlotRow.slot.in_(slot_names))))
        for item, outcome in marks:
            row = rows.get(item.seq)
            if row is None:
                continue
            row.lease_until = None
            if outcome.kind == "release":
                row.status = "pending"
            elif outcome.kind == "sent":
                if item.visibility != Visibility.PUBLIC:
                    await s.delete(row)  # no trail of who was told what
                    continue
                row.status = "sent"
                row.message_id = outcome.message_id
                if item.slot and outcome.message_id and item.slot not in known:
                    s.add(SlotRow(slot=item.slot, message_id=outcome.message_id))
                    known.add(item.slot)
            else:
                assert outcome.error is not None
                self._fail(row, item, outcome.error, now)
        await s.flush()

    def _fail(self, row: OutboxRow, item: _Claimed, err: DeliveryError, now: dt.datetime) -> None:
        row.attempts = item.attempts + 1
        row.last_error = err.reason[:200]
        if err.permanent or row.attempts >= self.config.max_attempts:
            row.status = "failed"
            if item.visibility != Visibility.PUBLIC:
                row.body = {}  # keep no private content once it cannot be delivered
            log.warning("outbox row %d failed for good: %s", item.seq, err.reason[:80])
            return
        backoff = min(
            self.config.backoff_max_seconds, self.config.backoff_base_seconds * 2 ** (row.attempts - 1)
        ) * random.uniform(0.8, 1.2)
        row.status = "pending"
        row.next_attempt_at = now + dt.timedelta(seconds=max(backoff, err.retry_after or 0.0))
