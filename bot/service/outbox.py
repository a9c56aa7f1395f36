"""Writing outgoing messages as outbox rows, inside the caller's transaction."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.accountability import split_key
from bot.domain.commands import Context
from bot.messages import Message, Visibility, find_attribution
from bot.persistence.tables import ConversationRow, OutboxRow


async def linked_conversations(session: AsyncSession, round_id: str) -> list[ConversationRow]:
    rows = await session.scalars(
        select(ConversationRow)
        .where(ConversationRow.round_id == round_id)
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
