"""Lookups more than one capability needs (a query starts in its capability; it moves here when a
second one needs it)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.errors import DomainError
from bot.domain.moderation import REVIEW
from bot.domain.phases import OPEN_PHASES
from bot.persistence.tables import BlockRow, ConversationRow, IdeaRow, ParticipantRow, RoundRow, TimerRow
from bot.refs import ConversationRef, UserRef

PHASE_DEADLINE = "phase_deadline"
IDLE_ROUND = "idle_round"  # due at once: the retention pass found the round idle
RETENTION = "retention"  # the daily retention pass (no round)


async def round_here(s: AsyncSession, where: ConversationRef) -> RoundRow | None:
    """The open round linked to this conversation, if any (one at a time per conversation)."""
    return await s.scalar(
        select(RoundRow)
        .join(ConversationRow, ConversationRow.round_id == RoundRow.id)
        .where(
            ConversationRow.platform == where.platform.value,
            ConversationRow.workspace_id == where.workspace_id,
            ConversationRow.channel_id == where.channel_id,
            RoundRow.phase.in_([p.value for p in OPEN_PHASES]),
        )
    )


async def round_linked_here(s: AsyncSession, where: ConversationRef, round_id: str | None) -> RoundRow:
    """The round a button or form names, which must be linked to the conversation it came from;
    with no id, the open round linked here."""
    if round_id is None:
        row = await round_here(s, where)
        if row is None:
            raise DomainError("no_round_here")
        return row
    row = await s.scalar(
        select(RoundRow)
        .join(ConversationRow, ConversationRow.round_id == RoundRow.id)
        .where(
            RoundRow.id == round_id,
            ConversationRow.platform == where.platform.value,
            ConversationRow.workspace_id == where.workspace_id,
            ConversationRow.channel_id == where.channel_id,
        )
    )
    if row is None:
        raise DomainError("round_gone")
    return row


async def participant(s: AsyncSession, round_id: str, user: UserRef) -> ParticipantRow | None:
    return await s.scalar(
        select(ParticipantRow).where(
            ParticipantRow.round_id == round_id,
            ParticipantRow.platform == user.platform.value,
            ParticipantRow.workspace_id == user.workspace_id,
            ParticipantRow.user_id == user.user_id,
        )
    )


async def count(s: AsyncSession, table: Any, *where: Any) -> int:
    return int(await s.scalar(select(func.count()).select_from(table).where(*where)) or 0)


async def deadline(s: AsyncSession, rnd: RoundRow) -> dt.datetime | None:
    return await s.scalar(
        select(TimerRow.due_at).where(
            TimerRow.round_id == rnd.id,
            TimerRow.phase == rnd.phase,
            TimerRow.kind == PHASE_DEADLINE,
            TimerRow.status == "pending",
        )
    )


def fmt_time(value: dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else None


WAITING = ("pending", REVIEW)  # not released yet: waiting for release, or for the conveners' review


async def blocked(s: AsyncSession, round_id: str, mark: str) -> bool:
    """Whether this mark (``bot.domain.moderation.block_mark``) is blocked in the round."""
    found = await s.scalar(select(BlockRow.id).where(BlockRow.round_id == round_id, BlockRow.mark == mark))
    return found is not None


async def pending_ideas_by(s: AsyncSession, round_id: str, author_key: str) -> list[IdeaRow]:
    """One author's ideas not yet released, found by their pseudonym under the round key."""
    rows = await s.scalars(
        select(IdeaRow)
        .where(IdeaRow.round_id == round_id, IdeaRow.author_key == author_key, IdeaRow.status.in_(WAITING))
        .order_by(IdeaRow.text)
    )
    return list(rows)


def padded(values: Iterable[Any]) -> list[Any]:
    """``values`` for an ``IN (...)``, repeated up to the next power of two (the same set): each
    length is a new SQL text to the database driver, which prepares every text it has not seen (a
    round trip and a plan on PostgreSQL), so a batch's lists of 1 to 200 ids share 9 texts."""
    out = sorted(set(values))
    size = 1
    while size < len(out):
        size *= 2
    return out + out[-1:] * (size - len(out))
