"""The relay's ledger: the outbox rows as the relay sees them, and the short transactions that move
them along (no delivery here: that is ``bot.service.relay``).

* **Claim**: due rows become ``in_flight`` under this worker's id, in *lanes*: one conversation's
  public posts in order, each private reply or DM alone. A conversation with a public row in flight
  anywhere, or waiting out a backoff, is not claimed again, so with any number of workers a
  conversation's posts go out in order and a slot's message id is recorded before anyone can claim
  its next edit. Claims are serialised across workers (an advisory lock on PostgreSQL).
* **Take back / take over**: a restarted worker takes back at once the rows it held; on PostgreSQL
  any worker takes over the rows of a worker that is gone; otherwise a lease (renewed while its
  worker lives) runs out.
* **Record**: outcomes are written as the platform answers them: sent (private rows deleted: no
  trail of who was told what), failed (backoff; public posts retried for the life of their round),
  offline (not an attempt), released (pending again, in order).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Row, Table, and_, bindparam, delete, exists, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from bot.config import OutboxConfig
from bot.domain.phases import OPEN_PHASES
from bot.messages import Visibility
from bot.persistence.db import dialect_insert
from bot.persistence.tables import OutboxRow, RoundRow, SlotRow
from bot.ports import Clock, DeliveryError
from bot.refs import ConversationRef, Platform
from bot.service import workers

log = logging.getLogger("convene.relay")

PUBLIC = Visibility.PUBLIC.value
OFFLINE_RETRY_SECONDS = 1.0  # a client that is not connected is asked again this soon, free of charge
LIVENESS_CHECK_SECONDS = 1.0  # how often a claim asks PostgreSQL which workers are alive

_T = cast(Table, OutboxRow.__table__)  # core statements: bulk updates by primary key


@dataclass(frozen=True, slots=True)
class Claimed:
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
class Outcome:
    kind: str  # sent | failed | offline | release
    message_id: str | None = None
    error: DeliveryError | None = None


RELEASE = Outcome("release")


@dataclass
class Lane:
    items: list[Claimed]
    lease_until: dt.datetime
    slots: dict[str, str] = field(default_factory=dict)  # slot -> message id, preloaded at claim


class OutboxLedger:
    """The outbox rows of one worker's relay: claims, take-overs, leases and recorded outcomes."""

    lane_rows = 50  # public rows of one conversation claimed together
    claim_rows = 500  # due rows looked at per claim

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Clock, config: OutboxConfig
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.config = config
        self.give_up_after = dt.timedelta(hours=config.public_give_up_hours)
        self.identity: workers.WorkerIdentity | None = None
        self._next_liveness = 0.0
        self.renewed_until: dt.datetime | None = None  # every lease of ours runs at least until then

    @property
    def worker_id(self) -> str:
        assert self.identity is not None, "the relay has not started"
        return self.identity.worker_id

    async def renew_leases(self) -> None:
        lease = self.clock.now() + dt.timedelta(seconds=self.config.lease_seconds)
        async with self.sessions() as s, s.begin():
            await s.execute(
                update(_T)
                .where(_T.c.status == "in_flight", _T.c.claimed_by == self.worker_id)
                .values(lease_until=lease)
            )
        self.renewed_until = lease

    # --- claim ----------------------------------------------------------------------------------

    async def take_back(self, me: str) -> None:
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

    async def claim(self, platforms: list[str], max_lanes: int) -> tuple[list[Lane], bool]:
        """Claim up to ``max_lanes`` lanes of rows for ``platforms``; also says whether more due rows
        were left unseen."""
        now = self.clock.now()
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
            items = [as_claimed(row) for row in lane if row.seq not in skip]
            known = {i.slot: slots[i.slot] for i in items if i.slot and i.slot in slots}
            out.append(Lane(items, lease, known))
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

    # --- record ---------------------------------------------------------------------------------

    async def record(self, marks: list[tuple[Claimed, Outcome]], s: AsyncSession) -> None:
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
            insert = dialect_insert(s.get_bind().dialect.name)
            await s.execute(
                insert(SlotRow)
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
        item: Claimed,
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


def as_claimed(row: Row[Any]) -> Claimed:
    return Claimed(
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
