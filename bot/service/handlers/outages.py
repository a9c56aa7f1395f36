"""Outages lose nothing, and the conveners hear of them (threats D3, D4).

The relay already retries a public post for the life of its round (and a client that is not
connected costs no attempt), so a platform outage at a phase close only delays that channel's
posts. What this capability adds is the word to the people who can act on it:

* **The outbox watch** (timer ``watch_outbox``, no round, re-armed on each pass and ensured at
  start-up by ``bot/app.py``): channels whose public posts have failed for longer than
  ``outbox.stall_minutes`` (``bot.service.outbox.take_stalls``, once per stall) are reported to each
  convener of their round, privately (a direct message), naming the platform and the channel: the
  conveners' own channel, which they linked. The notice carries a "Re-post now" button.
* **Re-post now** (button ``repost``, carrying the conversation's id): a convener of the round
  queues that channel's failing posts again at once, in their order, with fresh attempts
  (``requeue_conversation``), and is told so privately. If they fail for ``stall_minutes`` again,
  the conveners are told again.

Rules (when the watch looks, whom it tells) live in ``bot/domain/outages.py``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain import commands as c
from bot.domain import outages as rules
from bot.domain.errors import DomainError
from bot.ids import new_id
from bot.messages import Message, Part
from bot.persistence.tables import ConversationRow, RoundRow, TimerRow
from bot.ports import Clock
from bot.prompts import PromptKey
from bot.service import followup as fu
from bot.service.outbox import Stall, direct_row, requeue_conversation, take_stalls
from bot.service.registry import Button, Capability, Timer
from bot.service.unit import Unit, button

cap = Capability("outages")

WATCH = "watch_outbox"  # the timer kind
NO_ROUND = "-"  # the phase column of a timer that belongs to no round


# --- the watch ----------------------------------------------------------------------------------


@cap.command(c.WatchOutbox, in_round=False, timer=Timer(WATCH, lambda t: c.WatchOutbox(t.id)))
async def watch(u: Unit, cmd: c.WatchOutbox) -> None:
    now = u.now()
    after = dt.timedelta(minutes=u.config.outbox.stall_minutes)
    for stall in await take_stalls(u.s, now, after=after):
        await _tell_conveners(u, stall)
    await _rearm(u.s, cmd.timer_id, rules.next_watch(now))


async def _rearm(s: AsyncSession, timer_id: str, due: dt.datetime) -> None:
    """The watch's own row is due again (a pass a minute leaves no trail of done rows), unless
    another watch is pending (two processes that started at once): then this one ends."""
    if await _watch_pending(s):
        return
    own = await s.get(TimerRow, timer_id) if timer_id else None
    if own is None:
        s.add(_watch_timer(due))
        return
    own.status, own.due_at = "pending", due


async def _tell_conveners(u: Unit, stall: Stall) -> None:
    rnd = await u.s.get(RoundRow, stall.round_id)
    conv = await u.s.get(ConversationRow, stall.conversation_id)
    if rnd is None or conv is None:
        return
    params = {
        "round": rnd.title,
        "platform": conv.platform,
        "channel": conv.channel_id,
        "count": stall.undelivered,
        "minutes": rules.minutes_failing(stall.failing_since, u.now()),
    }
    buttons = (button(rnd.id, "repost", conv.id, label="repost", style="primary"),)
    message = Message((Part(PromptKey.STALL_NOTICE, params, buttons),))
    for key in rules.recipients(rnd.conveners):
        u.s.add(direct_row(key, message, rnd.id))


def _watch_timer(due: dt.datetime) -> TimerRow:
    return TimerRow(id=new_id(), round_id=None, kind=WATCH, phase=NO_ROUND, due_at=due, status="pending")


async def _watch_pending(s: AsyncSession) -> bool:
    found = await s.scalar(
        select(TimerRow.id).where(TimerRow.kind == WATCH, TimerRow.status == "pending").limit(1)
    )
    return found is not None


async def ensure_watch(sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
    """At start-up: the outbox watch is due now if none is scheduled (a new database)."""
    async with sessions() as s, s.begin():
        if not await _watch_pending(s):
            s.add(_watch_timer(clock.now()))


# --- re-post now --------------------------------------------------------------------------------


async def _locate(u: Unit, round_id: str | None) -> RoundRow:
    """The round the notice's button names, in any phase (a closed round's last posts retry for a
    while too); the click comes from a DM, which no round is linked to."""
    rnd = await u.s.get(RoundRow, round_id) if round_id else None
    if rnd is None:
        raise DomainError("round_gone")
    return rnd


@cap.command(
    c.Repost,
    locate=_locate,
    button=Button("repost", 1, build=lambda ctx, rid, args: c.Repost(ctx, rid, args[0])),
)
async def repost(u: Unit, cmd: c.Repost) -> None:
    rnd = u.round
    if not await fu.is_convener(u, rnd):
        raise DomainError("not_convener")
    conv = await u.s.get(ConversationRow, cmd.conversation_id)
    if conv is None or conv.round_id != rnd.id:
        raise DomainError("unknown_button")
    count = await requeue_conversation(u.s, rnd.id, conv.id)
    u.reply(PromptKey.REPOSTED, {"count": count, "platform": conv.platform, "channel": conv.channel_id})
