"""Writing outgoing messages as outbox rows, inside the caller's transaction; finding channels whose
posts keep failing, and queueing those posts again."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.accountability import split_key
from bot.domain.commands import Context
from bot.messages import Message, Visibility, find_attribution
from bot.persistence.tables import ConversationRow, OutboxRow


async def linked_conversations(session: AsyncSession, round_id: str) -> list[ConversationRow]:
    rows = await session.scalars(
        select(ConversationRow)
        .where(ConversationRow.round_id == round_id, ConversationRow.gone.is_(False))
        .order_by(ConversationRow.platform, ConversationRow.workspace_id, ConversationRow.channel_id)
    )
    return list(rows)


def public_row(
    round_id: str, conv: ConversationRow, message: Message, *, slot: str | None = None
) -> OutboxRow:
    leak = find_attribution(message.to_json())
    if leak:  # a programming error, never user input: refuse loudly before anything is stored
        raise ValueError(f"public message carries an attribution field: {leak}")
    return OutboxRow(
        round_id=round_id,
        platform=conv.platform,
        workspace_id=conv.workspace_id,
        channel_id=conv.channel_id,
        visibility=Visibility.PUBLIC.value,
        body=message.to_json(),
        slot=f"{slot}:{conv.id}" if slot else None,
        status="pending",
        attempts=0,
    )


async def post_everywhere(
    session: AsyncSession, round_id: str, message: Message, *, slot: str | None = None
) -> None:
    for conv in await linked_conversations(session, round_id):
        session.add(public_row(round_id, conv, message, slot=slot))


def private_row(ctx: Context, message: Message, round_id: str | None = None) -> OutboxRow:
    return OutboxRow(
        round_id=round_id,
        platform=ctx.where.platform.value,
        workspace_id=ctx.where.workspace_id,
        channel_id=ctx.where.channel_id,
        visibility=Visibility.PRIVATE.value,
        recipient_id=ctx.actor.user_id,
        reply_handle=ctx.reply_handle,
        body=message.to_json(),
        status="pending",
        attempts=0,
    )


DIRECT_CHANNEL = "@direct"  # direct rows name no conversation: the port opens the person's DM


def direct_row(person_key: str, message: Message, round_id: str | None = None) -> OutboxRow:
    """A direct message to a person outside any interaction (a reminder, an escalation), by their
    key (``UserRef.key()``). Deleted once delivered, like every private row."""
    platform, workspace, user_id = split_key(person_key)
    return OutboxRow(
        round_id=round_id,
        platform=platform,
        workspace_id=workspace,
        channel_id=DIRECT_CHANNEL,
        visibility=Visibility.DIRECT.value,
        recipient_id=user_id,
        body=message.to_json(),
        status="pending",
        attempts=0,
    )


# --- channels whose posts keep failing -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stall:
    """A linked channel whose public posts have been failing for a while (an outage, a revoked
    permission, the bot removed from the channel)."""

    round_id: str
    conversation_id: str  # round_conversations.id: what a re-post button carries
    platform: str
    failing_since: dt.datetime
    undelivered: int  # its public posts failing or failed (later ones wait behind them)


async def take_stalls(session: AsyncSession, now: dt.datetime, *, after: dt.timedelta) -> list[Stall]:
    """Channels whose public posts have failed for longer than ``after`` (config
    ``outbox.stall_minutes``) and were not reported yet. Marks them reported in the caller's
    transaction: write the conveners' notices in the same one, and each stall is reported once (again
    only after `requeue_conversation`, if the posts then fail for ``after`` once more)."""
    failing = and_(
        OutboxRow.visibility == Visibility.PUBLIC.value,
        OutboxRow.status.in_(["pending", "failed"]),
        OutboxRow.failing_since.is_not(None),
    )
    # The few undelivered rows first (the status index), grouped by conversation, then their
    # conversations: joined the other way round, PostgreSQL walks every delivered row of each round.
    where = (OutboxRow.round_id, OutboxRow.platform, OutboxRow.workspace_id, OutboxRow.channel_id)
    stalled = (
        select(*where, func.min(OutboxRow.failing_since).label("since"), func.count().label("n"))
        .where(failing)
        .group_by(*where)
        .having(func.min(OutboxRow.failing_since) <= now - after)
        .having(func.sum(case((OutboxRow.stall_noticed.is_(False), 1), else_=0)) > 0)
        .subquery()
    )
    found = await session.execute(
        select(ConversationRow, stalled.c.since, stalled.c.n)
        .join(
            stalled,
            and_(
                ConversationRow.round_id == stalled.c.round_id,
                ConversationRow.platform == stalled.c.platform,
                ConversationRow.workspace_id == stalled.c.workspace_id,
                ConversationRow.channel_id == stalled.c.channel_id,
            ),
        )
        .where(ConversationRow.gone.is_(False))  # a removed workspace is not a stall
    )
    stalls = []
    for conv, since, n in found:
        assert since is not None
        stalls.append(Stall(conv.round_id, conv.id, conv.platform, since, n))
        await session.execute(
            update(OutboxRow).where(failing, *_in_conversation(conv)).values(stall_noticed=True)
        )
    return stalls


async def requeue_conversation(session: AsyncSession, round_id: str, conversation_id: str) -> int:
    """The re-post button: a channel's failing and failed public posts are due again now, in their
    order, with fresh attempts (in the caller's transaction). Returns how many were requeued."""
    conv = await _conversation(session, round_id, conversation_id)
    if conv is None:
        return 0
    result = await session.execute(
        update(OutboxRow)
        .where(
            *_in_conversation(conv),
            OutboxRow.visibility == Visibility.PUBLIC.value,
            or_(
                OutboxRow.status == "failed",
                and_(OutboxRow.status == "pending", OutboxRow.failing_since.is_not(None)),
            ),
        )
        .values(status="pending", attempts=0, next_attempt_at=None, failing_since=None, stall_noticed=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def _conversation(session: AsyncSession, round_id: str, conversation_id: str) -> ConversationRow | None:
    return await session.scalar(
        select(ConversationRow).where(
            ConversationRow.id == conversation_id, ConversationRow.round_id == round_id
        )
    )


def _in_conversation(conv: ConversationRow) -> tuple[ColumnElement[bool], ...]:
    return (
        OutboxRow.round_id == conv.round_id,
        OutboxRow.platform == conv.platform,
        OutboxRow.workspace_id == conv.workspace_id,
        OutboxRow.channel_id == conv.channel_id,
    )
