"""Pilot review: on a pilot goal's review date the conveners are asked privately to record continue,
scale or stop, with a note; the decision is posted to the round's channels and shown on the goal's
card.
"""

from __future__ import annotations

from sqlalchemy import select

from bot.domain import accountability as acc
from bot.domain import commands as c
from bot.domain import validation
from bot.domain.errors import DomainError
from bot.domain.phases import Phase
from bot.domain.validation import ref_number
from bot.forms import FormField, Option
from bot.messages import Message, Part
from bot.persistence.tables import GoalRow
from bot.prompts import PromptKey
from bot.service import followup as fu
from bot.service.cards import goal_params
from bot.service.registry import Button, Capability, FormDef, FormInput, Timer
from bot.service.unit import Unit, button

cap = Capability("pilots")


@cap.command(
    c.AskPilotReview,
    timer=Timer(fu.PILOT_REVIEW, lambda t: c.AskPilotReview(t.round_id or "", t.subject or "")),
)
async def ask(u: Unit, cmd: c.AskPilotReview) -> None:
    rnd = u.round
    goal = await u.s.get(GoalRow, cmd.goal_id)
    if goal is None or goal.round_id != rnd.id or not goal.pilot or goal.pilot_decision is not None:
        return
    params = {"round": rnd.title, **goal_params(goal)}
    buttons = (button(rnd.id, "pilot", goal.number, label="record_decision"),)
    await fu.tell(u, rnd, rnd.conveners, Message((Part(PromptKey.PILOT_ASK, params, buttons),)))


async def _pilot(u: Unit, number: int) -> GoalRow:
    if not await fu.is_convener(u, u.round):
        raise DomainError("not_convener")
    goal = await u.s.scalar(select(GoalRow).where(GoalRow.round_id == u.round.id, GoalRow.number == number))
    if goal is None:
        raise DomainError("goal_gone")
    if not goal.pilot:
        raise DomainError("not_a_pilot")
    if goal.pilot_decision is not None:
        raise DomainError("pilot_decided_already", decision=goal.pilot_decision)
    return goal


async def _pilot_fields(u: Unit, arg: str | None) -> tuple[tuple[FormField, ...], str]:
    goal = await _pilot(u, ref_number(arg or ""))
    label = u.label
    fields = (
        FormField(
            "decision",
            label("fields", "decision"),
            "select",
            options=tuple(Option(d, label("pilot_decisions", d)) for d in acc.PILOT_DECISIONS),
        ),
        FormField("note", label("fields", "note"), "long", max_length=1000),
    )
    return fields, u.render(PromptKey.PILOT_INTRO, goal_params(goal))


def _pilot_command(f: FormInput) -> c.DecidePilot:
    decision, note = validation.pilot_from_form(f.values, acc.PILOT_DECISIONS)
    assert f.round_id is not None
    return c.DecidePilot(f.ctx, f.round_id, ref_number(f.arg or ""), decision, note)


@cap.command(
    c.DecidePilot,
    phases=(Phase.ACTIONS, Phase.CLOSED),
    locate=fu.locate_anywhere,
    button=Button("pilot", 1),
    form=FormDef("pilot", _pilot_fields, _pilot_command),
)
async def decide(u: Unit, cmd: c.DecidePilot) -> None:
    rnd = u.round
    goal = await _pilot(u, cmd.goal)
    goal.pilot_decision, goal.pilot_note, goal.pilot_decided_on = cmd.decision, cmd.note, u.today()
    await fu.plan_review(u, rnd, goal)  # decided: no review is pending any more
    await fu.show_goal(u, rnd, goal)
    public = {"number": goal.number, "title": goal.title, "decision": cmd.decision, "note": cmd.note}
    await u.post(Message((Part(PromptKey.PILOT_DECIDED, public),)))
    u.reply(PromptKey.PILOT_RECORDED, {"number": goal.number, "decision": cmd.decision})
