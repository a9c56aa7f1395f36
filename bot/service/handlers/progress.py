"""Progress: owners (or conveners) report on an action with one click or the progress form (status,
note, a new due date), which the action's history keeps and its card shows; and the progress post
in every linked channel, edited in place at the round's cadence.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.domain import accountability as acc
from bot.domain import commands as c
from bot.domain import validation
from bot.domain.errors import DomainError
from bot.domain.phases import Phase
from bot.domain.validation import ref_number
from bot.forms import FormField, Option
from bot.messages import Message, Part
from bot.persistence.tables import ActionRow
from bot.prompts import PromptKey
from bot.sanitize import one_line
from bot.service import followup as fu
from bot.service.registry import Arg, Button, Capability, FormDef, FormInput, Text, Timer
from bot.service.unit import Unit

cap = Capability("progress")

REPORT_PHASES = (Phase.ACTIONS, Phase.CLOSED)
ALL_STATUSES = (*acc.STATUSES, acc.CANCELLED)


async def _action(u: Unit, number: int) -> ActionRow:
    """The action a click or form names; gone (deleted since the reminder) is said plainly."""
    action = await u.s.scalar(
        select(ActionRow).where(ActionRow.round_id == u.round.id, ActionRow.number == number)
    )
    if action is None:
        raise DomainError("action_gone")
    return action


async def _may_update(u: Unit, action: ActionRow) -> bool:
    """The owner or a convener; returns whether the actor is a convener."""
    convener = await fu.is_convener(u, u.round)
    acc.check_may_update(u.actor.actor.key(), action.owner_ref, convener)
    return convener


async def record(u: Unit, action: ActionRow, status: str | None, note: str | None, due: Any = None) -> None:
    """Apply a report: the history keeps it, the card shows it, and reminders follow it (stopped
    when done or cancelled, planned again when reopened or moved)."""
    rnd = u.round
    changed = status is not None and status != action.status
    if status is not None:
        action.status = status
        action.done_on = u.today() if status == "done" else None
    if due is not None:
        fu.moved_due(action, due)
    if changed or note:
        await fu.add_note(u, action, note, one_line(u.actor.actor.display_name)[:200] or None)
    await fu.plan_action(u, rnd, action)
    await fu.show_action(u, rnd, action)
    params = {
        "number": action.number,
        "title": action.title,
        "status": action.status,
        "noted": bool(note),
        "due": due.isoformat() if due is not None else None,
    }
    u.reply(PromptKey.STATUS_SET, params)


def _status_click(ctx: c.Context, rid: str, args: tuple[str, ...]) -> c.SetActionStatus:
    return c.SetActionStatus(ctx, rid, ref_number(args[0]), args[1])


@cap.command(
    c.SetActionStatus,
    phases=REPORT_PHASES,
    locate=fu.locate_anywhere,
    button=Button("st", 2, build=_status_click),
)
async def set_status(u: Unit, cmd: c.SetActionStatus) -> None:
    action = await _action(u, cmd.action)
    convener = await _may_update(u, action)
    acc.check_status(cmd.status, convener=convener)
    await record(u, action, cmd.status, None)


async def _progress_fields(u: Unit, arg: str | None) -> tuple[tuple[FormField, ...], str]:
    action = await _action(u, ref_number(arg or ""))
    convener = await _may_update(u, action)
    label = u.label
    statuses = ALL_STATUSES if convener else acc.STATUSES
    fields = (
        FormField(
            "status",
            label("fields", "status"),
            "select",
            options=tuple(Option(s, label("statuses", s)) for s in statuses),
            initial=action.status,
        ),
        FormField("note", label("fields", "note"), "long", required=False, max_length=1000),
        FormField("due", label("fields", "new_due"), "date", required=False),
    )
    params = {"number": action.number, "title": action.title, "due": action.due.isoformat()}
    return fields, u.render(PromptKey.PROGRESS_INTRO, params)


def _progress_command(f: FormInput) -> c.ReportProgress:
    report = validation.progress_from_form(f.values, f.today, ALL_STATUSES)
    return c.ReportProgress(f.ctx, ref_number(f.arg or ""), report, f.round_id)


@cap.command(
    c.ReportProgress,
    phases=REPORT_PHASES,
    locate=fu.locate_anywhere,
    text=Text("update", Arg("action", "int", required=True)),
    button=Button("upd", 1),
    form=FormDef("progress", _progress_fields, _progress_command),
)
async def report_progress(u: Unit, cmd: c.ReportProgress) -> None:
    action = await _action(u, cmd.action)
    convener = await _may_update(u, action)
    report = cmd.report
    if report.status is not None:
        acc.check_status(report.status, convener=convener)
    status = report.status if report.status != action.status else None
    await record(u, action, status, report.note, report.due)


# --- the progress post ----------------------------------------------------------------------------


def progress_slot(round_id: str) -> str:
    return f"progress:{round_id}"


@cap.command(c.PostProgress, timer=Timer(fu.PROGRESS, lambda t: c.PostProgress(t.round_id or "")))
async def post_progress(u: Unit, cmd: c.PostProgress) -> None:
    """One message per linked channel, edited each time; the next update is planned here, until
    nothing is left to follow."""
    rnd = u.round
    row = await fu.followup_of(u, rnd.id)
    if row is None or row.over:
        return
    params = await fu.round_progress(u, rnd)
    params["week"] = max(1, (fu.local_today(u, rnd) - row.started_on).days // 7)
    keep = ("title", "today", "week", "goals", "actions", "counts", "over")
    await u.post(
        Message((Part(PromptKey.PROGRESS_POST, {k: params[k] for k in keep}),)), slot=progress_slot(rnd.id)
    )
    if params["over"]:
        row.over = True
    else:
        fu.plan_progress(u, rnd, row)
