"""The outbox relay: the only code that calls a ChatPort.

claim (short transaction) -> deliver (no transaction held across the network) -> mark (short
transaction). A crash between commit and delivery loses nothing: the row is still pending, or
in flight with a lease that runs out. Private rows are deleted once delivered, so the database
keeps no trail of who was told what.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import OutboxConfig
from bot.messages import Message, Visibility
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


class OutboxRelay:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        ports: Mapping[str, ChatPort],
        prompts: Prompts,
        clock: Clock,
        config: OutboxConfig | None = None,
    ) -> None:
        self.sessions = sessions
        self.ports = dict(ports)
        self.prompts = prompts
        self.clock = clock
        self.config = config or OutboxConfig()
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:
                log.exception("outbox relay pass failed; retrying")
            try:
                await asyncio.wait_for(self._wake.wait(), self.config.poll_seconds)
            except TimeoutError:
                pass
            self._wake.clear()

    async def drain(self, max_passes: int = 100) -> int:
        """Deliver until nothing is due (tests, demo, shutdown)."""
        total = 0
        for _ in range(max_passes):
            n = await self.run_once()
            total += n
            if n == 0:
                break
        return total

    async def run_once(self, limit: int = 50) -> int:
        claimed = await self._claim(limit)
        failed_conversations: set[ConversationRef] = set()
        for item in claimed:
            if item.conversation in failed_conversations:
                await self._release(item)  # keep the order within a conversation
                continue
            try:
                message_id = await self._deliver(item)
            except DeliveryError as err:
                failed_conversations.add(item.conversation)
                await self._failed(item, err)
            except Exception as err:  # an adapter bug must not stop the relay; retry with backoff
                failed_conversations.add(item.conversation)
                log.warning("delivery of outbox row %d raised %s", item.seq, type(err).__name__)
                await self._failed(item, DeliveryError(type(err).__name__))
            else:
                await self._sent(item, message_id)
        return len(claimed)

    async def _claim(self, limit: int) -> list[_Claimed]:
        now = self.clock.now()
        async with self.sessions() as s, s.begin():
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
            # A row waiting out a backoff holds back later rows to its conversation, so the order of
            # a release (header, then ideas in their shuffled order) survives a 429.
            waiting = await s.execute(
                select(
                    OutboxRow.platform, OutboxRow.workspace_id, OutboxRow.channel_id, func.min(OutboxRow.seq)
                )
                .where(OutboxRow.status == "pending", OutboxRow.next_attempt_at > now)
                .group_by(OutboxRow.platform, OutboxRow.workspace_id, OutboxRow.channel_id)
            )
            blocked = {(p, w, ch): seq for p, w, ch, seq in waiting}
            rows = [
                r for r in rows if r.seq < blocked.get((r.platform, r.workspace_id, r.channel_id), r.seq + 1)
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
        return out

    async def _deliver(self, item: _Claimed) -> str | None:
        port = self.ports[item.conversation.platform.value]
        rendered = self.prompts.render_message(Message.from_json(item.body), port.escape)
        if item.visibility == Visibility.PRIVATE:
            assert item.recipient_id is not None
            await port.post_private(item.conversation, item.recipient_id, rendered, item.reply_handle)
            return None
        if item.visibility == Visibility.DIRECT:
            assert item.recipient_id is not None
            return await port.send_direct(item.conversation.workspace_id, item.recipient_id, rendered)
        if item.slot:
            async with self.sessions() as s:
                existing = await s.get(SlotRow, item.slot)
            if existing is not None:
                await port.edit(item.conversation, existing.message_id, rendered)
                return existing.message_id
        return await port.post(item.conversation, rendered)

    async def _sent(self, item: _Claimed, message_id: str | None) -> None:
        async with self.sessions() as s, s.begin():
            row = await s.get(OutboxRow, item.seq)
            if row is None:
                return
            if item.visibility != Visibility.PUBLIC:
                await s.delete(row)
                return
            row.status = "sent"
            row.message_id = message_id
            row.lease_until = None
            if item.slot and message_id and await s.get(SlotRow, item.slot) is None:
                s.add(SlotRow(slot=item.slot, message_id=message_id))

    async def _release(self, item: _Claimed) -> None:
        async with self.sessions() as s, s.begin():
            row = await s.get(OutboxRow, item.seq)
            if row is not None:
                row.status = "pending"
                row.lease_until = None

    async def _failed(self, item: _Claimed, err: DeliveryError) -> None:
        attempts = item.attempts + 1
        async with self.sessions() as s, s.begin():
            row = await s.get(OutboxRow, item.seq)
            if row is None:
                return
            row.attempts = attempts
            row.last_error = err.reason[:200]
            row.lease_until = None
            if err.permanent or attempts >= self.config.max_attempts:
                row.status = "failed"
                if item.visibility != Visibility.PUBLIC:
                    row.body = {}  # keep no private content once it cannot be delivered
                log.warning("outbox row %d failed for good: %s", item.seq, err.reason[:80])
                return
            backoff = min(
                self.config.backoff_max_seconds, self.config.backoff_base_seconds * 2 ** (attempts - 1)
            ) * random.uniform(0.8, 1.2)
            delay = max(backoff, err.retry_after or 0.0)
            row.status = "pending"
            row.next_attempt_at = self.clock.now() + dt.timedelta(seconds=delay)
