"""Reminders: an action's owner is messaged privately before its due date and on the day, with
one-click status buttons and a note form; an overdue action is escalated privately to the
conveners, once. Each is a timer row fired through the bus; each is sent at most once (the action
records it), never for a done or cancelled action, never to someone who muted reminders.
"""

from __future__ import annotations

from typing import Any

from bot.domain import accountability as acc
from bot.domain import commands as c
from bot.domain.errors import DomainError
from bot.messages import ButtonSpec, Message, Part
from bot.persistence.tables import ActionRow, GoalRow, ReminderMuteRow, RoundRow
from bot.prompts import PromptKey
from bot.service import followup as fu
from bot.service.registry import Arg, Button, Capability, Text, Timer
from bot.service.unit import Unit, button

cap = Capability("reminders")

STATUS_BUTTONS = ("on_track", "at_risk", "blocked", "done")


def action_buttons(rnd: RoundRow, action: ActionRow) -> tuple[ButtonSpec, ...]:
    """One click per status, a note (or a new due date), and a way to stop these messages."""
    return (
        *(button(rnd.id, "st", action.number, status, label=status) for status in STATUS_BUTTONS),
        button(rnd.id, "upd", action.number, label="add_note"),
        button("-", "mute", label="mute"),
    )


async def action_params(u: Unit, rnd: RoundRow, action: ActionRow) -> dict[str, Any]:
    goal = await u.s.get(GoalRow, action.goal_id)
    return {
        "round": rnd.title,
        "number": action.number,
        "title": action.title,
        "goal": goal.number if goal else None,
        "goal_title": goal.title if goal else "",
        "owner": action.owner_name,
        "due": action.due.isoformat(),
        "status": action.status,
    }


async def _open_action(u: Unit, action_id: str) -> ActionRow | None:
    """The action a reminder is about, unless it is gone, done or cancelled (then nothing is sent)."""
    action = await u.s.get(ActionRow, action_id)
    if action is None or action.round_id != u.round.id or action.status in acc.CLOSED_STATUSES:
        return None
    return action


def _build(kind: type[Any]) -> Any:
    return lambda t: kind(t.round_id, t.subject or "")


@cap.command(c.RemindDueSoon, timer=Timer(fu.DUE_SOON, _build(c.RemindDueSoon)))
@cap.command(c.RemindDue, timer=Timer(fu.DUE, _build(c.RemindDue)))
async def remind_owner(u: Unit, cmd: c.RemindDueSoon | c.RemindDue) -> None:
    rnd = u.round
    action = await _open_action(u, cmd.action_id)
    if action is None:
        return
    today = fu.local_today(u, rnd)
    soon = isinstance(cmd, c.RemindDueSoon)
    if (action.due_soon_sent_on if soon else action.due_sent_on) is not None:
        return  # sent already (a timer planned twice fires once)
    if soon:
        action.due_soon_sent_on = today
    else:
        action.due_sent_on = today
    params = await action_params(u, rnd, action)
    params |= {
        "kind": acc.DUE_SOON if soon else acc.DUE,
        "days": max(0, (action.due - today).days),
        "to_owner": action.owner_ref is not None,
    }
    message = Message((Part(PromptKey.REMINDER, params, action_buttons(rnd, action)),))
    await fu.tell(u, rnd, fu.owner_or_conveners(rnd, action.owner_ref), message)


@cap.command(c.EscalateOverdue, timer=Timer(fu.OVERDUE, _build(c.EscalateOverdue)))
async def escalate(u: Unit, cmd: c.EscalateOverdue) -> None:
    rnd = u.round
    action = await _open_action(u, cmd.action_id)
    if action is None or action.escalated_on is not None:
        return
    today = fu.local_today(u, rnd)
    if action.due >= today:
        return  # the due date moved since this was planned; its own reminders are planned
    action.escalated_on = today
    params = await action_params(u, rnd, action)
    message = Message((Part(PromptKey.ESCALATION, params, action_buttons(rnd, action)),))
    await fu.tell(u, rnd, rnd.conveners, message)


# --- muting -----------------------------------------------------------------------------------------


def _setting(rest: str) -> bool | None:
    word = rest.strip().lower()
    return True if word in ("on", "yes") else False if word in ("off", "no", "mute") else None


@cap.command(
    c.SetReminders,
    in_round=False,
    text=Text(
        "reminders",
        Arg("setting", "str", required=True),
        build=lambda ctx, rest: c.SetReminders(ctx, _setting(rest)),
    ),
    button=Button("mute", build=lambda ctx, _rid, _args: c.SetReminders(ctx, False)),
)
async def set_reminders(u: Unit, cmd: c.SetReminders) -> None:
    """A person's reminders (due dates, check-ins, escalations, reviews), on or off, in every round."""
    if cmd.on is None:
        raise DomainError("reminders_on_or_off")
    person = acc.person_id(u.actor.actor.key())
    row = await u.s.get(ReminderMuteRow, person)
    if cmd.on and row is not None:
        await u.s.delete(row)
    elif not cmd.on and row is None:
        u.s.add(ReminderMuteRow(person=person))
    u.reply(PromptKey.REMINDERS_SET, {"on": cmd.on})
