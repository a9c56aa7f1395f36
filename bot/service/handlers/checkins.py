"""Metric check-ins: at each goal's cadence its owner (or, for a named owner, the conveners) is
asked privately for the metric's current value; the answer is kept with the goal's history and its
card's progress bar is edited in place.
"""

from __future__ import annotations

from sqlalchemy import func, select

from bot.domain import accountability as acc
from bot.domain import commands as c
from bot.domain import validation
from bot.domain.errors import DomainError
from bot.domain.phases import Phase
from bot.domain.validation import ref_number
from bot.forms import FormField
from bot.ids import new_id
from bot.messages import Message, Part
from bot.persistence.tables import CheckinRow, GoalRow
from bot.prompts import PromptKey
from bot.service import followup as fu
from bot.service.cards import goal_params
from bot.service.registry import Button, Capability, FormDef, FormInput, Timer
from bot.service.unit import Unit, button

cap = Capability("checkins")


@cap.command(c.AskCheckIn, timer=Timer(fu.CHECKIN, lambda t: c.AskCheckIn(t.round_id or "", t.subject or "")))
async def ask(u: Unit, cmd: c.AskCheckIn) -> None:
    rnd = u.round
    goal = await u.s.get(GoalRow, cmd.goal_id)
    if goal is None or goal.round_id != rnd.id:
        return
    params = {"round": rnd.title, **goal_params(goal)}
    buttons = (button(rnd.id, "ci", goal.number, label="report_value"), button("-", "mute", label="mute"))
    message = Message((Part(PromptKey.CHECKIN_ASK, params, buttons),))
    await fu.tell(u, rnd, fu.owner_or_conveners(rnd, goal.owner_ref), message)
    await fu.plan_checkin(u, rnd, goal)  # the next one, at the goal's cadence


async def _goal(u: Unit, number: int) -> GoalRow:
    goal = await u.s.scalar(select(GoalRow).where(GoalRow.round_id == u.round.id, GoalRow.number == number))
    if goal is None:
        raise DomainError("goal_gone")
    return goal


async def _check_owner(u: Unit, goal: GoalRow) -> None:
    if not await fu.is_convener(u, u.round) and not acc.same_person(u.actor.actor.key(), goal.owner_ref):
        raise DomainError("not_goal_owner")


async def _checkin_fields(u: Unit, arg: str | None) -> tuple[tuple[FormField, ...], str]:
    goal = await _goal(u, ref_number(arg or ""))
    await _check_owner(u, goal)
    label = u.label
    fields = (
        FormField("value", label("fields", "value"), "number"),
        FormField("note", label("fields", "note"), "long", required=False, max_length=1000),
    )
    return fields, u.render(PromptKey.CHECKIN_INTRO, goal_params(goal))


def _checkin_command(f: FormInput) -> c.CheckIn:
    value, note = validation.checkin_from_form(f.values)
    assert f.round_id is not None
    return c.CheckIn(f.ctx, f.round_id, ref_number(f.arg or ""), value, note)


@cap.command(
    c.CheckIn,
    phases=(Phase.GOALS, Phase.ACTIONS, Phase.CLOSED),
    locate=fu.locate_anywhere,
    button=Button("ci", 1),
    form=FormDef("checkin", _checkin_fields, _checkin_command),
)
async def check_in(u: Unit, cmd: c.CheckIn) -> None:
    rnd = u.round
    goal = await _goal(u, cmd.goal)
    await _check_owner(u, goal)
    highest = await u.s.scalar(select(func.max(CheckinRow.number)).where(CheckinRow.goal_id == goal.id))
    u.s.add(
        CheckinRow(
            id=new_id(),
            goal_id=goal.id,
            number=int(highest or 0) + 1,
            day=u.today(),
            value=cmd.value,
            note=cmd.note,
        )
    )
    goal.current = cmd.value
    await fu.show_goal(u, rnd, goal)
    params = goal_params(goal)
    params["value"] = params["current"]
    u.reply(PromptKey.CHECKIN_RECORDED, params)
