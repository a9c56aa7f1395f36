"""Recap: a round started in (or linked to) a channel an earlier round used opens there with "since
last round": that round's goals with their progress, its actions done, open and overdue, and its
pilots decided.
"""

from __future__ import annotations

from sqlalchemy import select

from bot.domain.events import ChannelLinked
from bot.messages import Message, Part
from bot.persistence.tables import ConversationRow, FollowUpRow, RoundRow
from bot.prompts import PromptKey
from bot.service import followup as fu
from bot.service.outbox import public_row
from bot.service.registry import Capability
from bot.service.unit import Unit

cap = Capability("recap")


@cap.on(ChannelLinked)
async def since_last_round(u: Unit, event: ChannelLinked) -> None:
    conv = await u.s.get(ConversationRow, event.conversation_id)
    if conv is None:
        return
    earlier = await u.s.execute(
        select(RoundRow, FollowUpRow.started_on)
        .join(ConversationRow, ConversationRow.round_id == RoundRow.id)
        .join(FollowUpRow, FollowUpRow.round_id == RoundRow.id)
        .where(
            ConversationRow.platform == conv.platform,
            ConversationRow.workspace_id == conv.workspace_id,
            ConversationRow.channel_id == conv.channel_id,
            RoundRow.id != event.round_id,
        )
        .order_by(FollowUpRow.started_on.desc(), RoundRow.title)
        .limit(1)
    )
    found = earlier.first()
    if found is None:
        return
    rnd, since = found
    params = await fu.round_progress(u, rnd)
    keep = ("title", "goals", "done", "open", "overdue", "pilots")
    message = Message((Part(PromptKey.RECAP, {"since": since.isoformat(), **{k: params[k] for k in keep}}),))
    u.s.add(public_row(event.round_id, conv, message))
