"""What the follow-up capabilities share: where a follow-up command's round is, who its conveners
are, direct messages that respect a mute, progress history, the timer rows of every reminder, and
the cards they edit in place.

Follow-up never needs the round key (it is destroyed at close): actions and goal owners are
attributed on purpose, and people are found by the platform ref stored with them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, func, select, update

from bot.domain import accountability as acc
from bot.domain.errors import DomainError
from bot.domain.phases import Phase
from bot.ids import new_id
from bot.messages import Message
from bot.persistence.tables import (
    ActionNoteRow,
    ActionRow,
    ConversationRow,
    FollowUpRow,
    GoalRow,
    ReminderMuteRow,
    RoundRow,
    TimerRow,
)
from bot.refs import ConversationRef
from bot.service import queries
from bot.service.cards import action_card, action_slot, goal_card, goal_params, goal_slot
from bot.service.outbox import direct_row
from bot.service.unit import Unit

# Timer kinds (each is one registered route).
DUE_SOON = "remind_due_soon"
DUE = "remind_due"
OVERDUE = "escalate_overdue"
CHECKIN = "ask_checkin"
PILOT_REVIEW = "ask_pilot_review"
PROGRESS = "post_progress"
ACTION_TIMERS = {acc.DUE_SOON: DUE_SOON, acc.DUE: DUE, acc.OVERDUE: OVERDUE}


# --- where a follow-up command acts -------------------------------------------------------------


async def followup_of(u: Unit, round_id: str) -> FollowUpRow | None:
    return await u.s.get(FollowUpRow, round_id)


async def round_followed_here(u: Unit, where: ConversationRef) -> RoundRow | None:
    """The open round linked here, else the latest round linked here whose follow-up is on."""
    rnd = await queries.round_here(u.s, where)
    if rnd is not None:
        return rnd
    return await u.s.scalar(
        select(RoundRow)
        .join(ConversationRow, ConversationRow.round_id == RoundRow.id)
        .join(FollowUpRow, FollowUpRow.round_id == RoundRow.id)
        .where(
            ConversationRow.platform == where.platform.value,
            ConversationRow.workspace_id == where.workspace_id,
            ConversationRow.channel_id == where.channel_id,
        )
        .order_by(FollowUpRow.started_on.desc(), RoundRow.title)
        .limit(1)
    )


async def locate_here(u: Unit, round_id: str | None) -> RoundRow:
    """A command typed or clicked in a channel: the round it names (linked here), else the open
    round here, else the latest round followed up here."""
    if round_id is not None:
        return await queries.round_linked_here(u.s, u.actor.where, round_id)
    rnd = await round_followed_here(u, u.actor.where)
    if rnd is None:
        raise DomainError("no_round_here")
    return rnd


async def locate_anywhere(u: Unit, round_id: str | None) -> RoundRow:
    """A click in a reminder (a DM, linked to no round): the round its button names. Who may act
    on it is the handler's rule (the owner, or a convener)."""
    if round_id is None:
        return await locate_here(u, None)
    rnd = await u.s.get(RoundRow, round_id)
    if rnd is None or rnd.phase == Phase.CANCELLED:
        raise DomainError("round_gone")
    return rnd


async def is_convener(u: Unit, rnd: RoundRow) -> bool:
    found = await u.s.execute(
        select(ConversationRow.platform, ConversationRow.workspace_id).where(
            ConversationRow.round_id == rnd.id
        )
    )
    tenants = {(p, w) for p, w in found}
    ctx = u.actor
    return acc.is_round_convener(ctx.actor.key(), ctx.is_convener, rnd.conveners, tenants)


def owned_by(column: Any, actor_key: str) -> ColumnElement[bool]:
    """SQL for "this ref is the person ``actor_key``" (see accountability.person_id): a Discord
    user in any guild or DM, anyone else in their workspace."""
    platform, _workspace, user = acc.split_key(actor_key)
    if platform != "discord":
        return column == actor_key  # type: ignore[no-any-return]
    escaped = user.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(f"discord\x1f%\x1f{escaped}", escape="\\")  # type: ignore[no-any-return]


def tz_of(u: Unit, rnd: RoundRow) -> str:
    return str(rnd.settings.get("timezone") or u.config.followup.timezone)


def local_today(u: Unit, rnd: RoundRow) -> dt.date:
    return acc.local_day(u.now(), tz_of(u, rnd))


# --- telling people -------------------------------------------------------------------------------


async def tell(u: Unit, rnd: RoundRow, keys: Iterable[str | None], message: Message) -> list[str]:
    """A direct message to each person (once each, skipping who muted reminders); returns whom."""
    people: dict[str, str] = {}
    for key in keys:
        if key and acc.person_id(key) not in people:
            people[acc.person_id(key)] = key
    if not people:
        return []
    muted = await _muted(u)
    told = [key for pid, key in people.items() if pid not in muted]
    for key in told:
        u.s.add(direct_row(key, message, rnd.id))
    return told


async def _muted(u: Unit) -> set[str]:
    """Who muted their reminders, read once per transaction (a scheduler pass fires many timers)."""
    muted = u.s.info.get("muted_reminders")
    if muted is None:
        muted = u.s.info["muted_reminders"] = set(await u.s.scalars(select(ReminderMuteRow.person)))
    return set(muted)


def owner_or_conveners(rnd: RoundRow, owner_ref: str | None) -> list[str]:
    """An owner on a platform is told; a named owner (an organisation) has no DM, so the conveners
    are told on its behalf."""
    return [owner_ref] if owner_ref else list(rnd.conveners)


# --- progress history -----------------------------------------------------------------------------


async def add_note(u: Unit, action: ActionRow, note: str | None, by_name: str | None) -> None:
    highest = await u.s.scalar(
        select(func.max(ActionNoteRow.number)).where(ActionNoteRow.action_id == action.id)
    )
    u.s.add(
        ActionNoteRow(
            id=new_id(),
            action_id=action.id,
            number=int(highest or 0) + 1,
            day=u.today(),
            status=action.status,
            note=note,
            by_name=by_name,
        )
    )


async def history(u: Unit, action_ids: list[str]) -> dict[str, list[ActionNoteRow]]:
    out: dict[str, list[ActionNoteRow]] = {a: [] for a in action_ids}
    if action_ids:
        rows = await u.s.scalars(
            select(ActionNoteRow)
            .where(ActionNoteRow.action_id.in_(action_ids))
            .order_by(ActionNoteRow.action_id, ActionNoteRow.number)
        )
        for row in rows:
            out[row.action_id].append(row)
    return out


# --- cards edited in place ------------------------------------------------------------------------


async def show_action(u: Unit, rnd: RoundRow, action: ActionRow) -> None:
    goal = await u.s.get(GoalRow, action.goal_id)
    if goal is not None:
        await u.post(action_card(rnd, action, goal), slot=action_slot(action), round_id=rnd.id)


async def show_goal(u: Unit, rnd: RoundRow, goal: GoalRow) -> None:
    await u.post(goal_card(goal), slot=goal_slot(goal), round_id=rnd.id)


# --- timers ---------------------------------------------------------------------------------------


def add_timer(u: Unit, rnd: RoundRow, kind: str, subject: str, at: dt.datetime) -> None:
    u.s.add(
        TimerRow(
            id=new_id(),
            round_id=rnd.id,
            kind=kind,
            phase=rnd.phase,
            due_at=at,
            status="pending",
            subject=subject,
        )
    )


async def cancel_timers(u: Unit, subject: str, kinds: Iterable[str]) -> None:
    await u.s.execute(
        update(TimerRow)
        .where(TimerRow.subject == subject, TimerRow.status == "pending", TimerRow.kind.in_(list(kinds)))
        .values(status="cancelled")
    )


def sent_reminders(action: ActionRow) -> set[str]:
    sent = set()
    if action.due_soon_sent_on:
        sent.add(acc.DUE_SOON)
    if action.due_sent_on:
        sent.add(acc.DUE)
    if action.escalated_on:
        sent.add(acc.OVERDUE)
    return sent


async def plan_action(u: Unit, rnd: RoundRow, action: ActionRow) -> None:
    """(Re)plan an action's reminders from its due date: none once it is done or cancelled, and
    none before its round's follow-up has started."""
    await cancel_timers(u, action.id, ACTION_TIMERS.values())
    if action.status in acc.CLOSED_STATUSES or await followup_of(u, rnd.id) is None:
        return
    fc = u.config.followup
    plan = acc.reminder_plan(
        action.due,
        u.now(),
        tz=tz_of(u, rnd),
        hour=fc.reminder_hour,
        days_before=fc.due_soon_days,
        sent=sent_reminders(action),
    )
    for reminder in plan:
        add_timer(u, rnd, ACTION_TIMERS[reminder.kind], action.id, reminder.at)


def moved_due(action: ActionRow, due: dt.date) -> None:
    """A new due date: reminders still ahead of it may be sent again (each once)."""
    if due == action.due:
        return
    action.due = due
    action.due_soon_sent_on = action.due_sent_on = action.escalated_on = None


async def plan_checkin(u: Unit, rnd: RoundRow, goal: GoalRow) -> None:
    """(Re)plan a goal's next metric check-in: at its cadence from the start of follow-up, until
    its deadline."""
    await cancel_timers(u, goal.id, (CHECKIN,))
    fu = await followup_of(u, rnd.id)
    if fu is None:
        return
    tz = tz_of(u, rnd)
    day = acc.next_checkin(fu.started_on, goal.checkin_cadence, acc.local_day(u.now(), tz), goal.deadline)
    if day is not None:
        add_timer(u, rnd, CHECKIN, goal.id, acc.at_local(day, u.config.followup.reminder_hour, tz))


async def plan_review(u: Unit, rnd: RoundRow, goal: GoalRow) -> None:
    """(Re)plan a pilot's review on its review date, until it is decided."""
    await cancel_timers(u, goal.id, (PILOT_REVIEW,))
    if not (goal.pilot and goal.review_date and goal.pilot_decision is None):
        return
    if await followup_of(u, rnd.id) is None:
        return
    at = acc.at_local(goal.review_date, u.config.followup.reminder_hour, tz_of(u, rnd))
    add_timer(u, rnd, PILOT_REVIEW, goal.id, max(at, u.now()))


def plan_progress(u: Unit, rnd: RoundRow, fu: FollowUpRow) -> None:
    tz = tz_of(u, rnd)
    day = acc.next_every(fu.started_on, fu.progress_days, acc.local_day(u.now(), tz))
    add_timer(u, rnd, PROGRESS, rnd.id, acc.at_local(day, u.config.followup.reminder_hour, tz))


async def retime(u: Unit, rnd: RoundRow, old_tz: str) -> None:
    """The round's time zone changed: each pending follow-up timer keeps its local day and hour."""
    new_tz = tz_of(u, rnd)
    timers = await u.s.scalars(
        select(TimerRow).where(
            TimerRow.round_id == rnd.id, TimerRow.status == "pending", TimerRow.subject.is_not(None)
        )
    )
    for timer in timers:
        local = timer.due_at.astimezone(acc.zone(old_tz))
        moved = local.replace(tzinfo=acc.zone(new_tz)).astimezone(dt.UTC)
        timer.due_at = max(moved, u.now())


# --- where a round's follow-up stands (the progress post, the recap) ------------------------------


async def round_progress(u: Unit, rnd: RoundRow) -> dict[str, Any]:
    """Goals with their progress, and actions with their status: the progress post and the recap."""
    today = local_today(u, rnd)
    goals = list(
        await u.s.scalars(select(GoalRow).where(GoalRow.round_id == rnd.id).order_by(GoalRow.number))
    )
    actions = list(
        await u.s.scalars(select(ActionRow).where(ActionRow.round_id == rnd.id).order_by(ActionRow.number))
    )
    listed = [
        {
            "number": a.number,
            "title": a.title,
            "owner": a.owner_name,
            "due": a.due.isoformat(),
            "status": a.status,
            "overdue": acc.is_overdue(a.due, a.status, today),
        }
        for a in actions
        if a.status != acc.CANCELLED
    ]
    done = [a for a in listed if a["status"] == "done"]
    overdue = [a for a in listed if a["overdue"]]
    still = [a for a in listed if a["status"] != "done" and not a["overdue"]]
    return {
        "title": rnd.title,
        "today": today.isoformat(),
        "goals": [goal_params(g) for g in goals],
        "actions": listed,
        "done": done,
        "overdue": overdue,
        "open": still,
        "counts": {"done": len(done), "open": len(still), "overdue": len(overdue)},
        "pilots": [
            {"number": g.number, "title": g.title, "decision": g.pilot_decision}
            for g in goals
            if g.pilot_decision
        ],
        "over": acc.follow_up_over(
            today,
            len(still) + len(overdue),
            [g.deadline for g in goals],
            [g.review_date for g in goals if g.pilot and g.review_date and not g.pilot_decision],
        ),
    }
