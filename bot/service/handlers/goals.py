"""Goals with numbers: conveners turn ideas into goals (outcome, metric, baseline, target, deadline,
pilot), and the goal cards open the actions phase. Each goal's first card is a slot, edited in place
when the goal is edited or followed up."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.domain import commands as c
from bot.domain import validation
from bot.domain.errors import FormErrors
from bot.domain.events import PhaseEntered
from bot.domain.phases import Phase
from bot.domain.rules import Who
from bot.domain.validation import ref_number
from bot.forms import FormField
from bot.ids import new_id
from bot.messages import Part
from bot.persistence.tables import GoalRow, IdeaRow
from bot.prompts import PromptKey
from bot.service.cards import goal_card, goal_params, goal_slot
from bot.service.registry import Arg, Button, Capability, FormDef, FormInput, Text
from bot.service.unit import Unit, button

cap = Capability("goals")


async def _goal_fields(u: Unit, arg: str | None) -> tuple[tuple[FormField, ...], str]:
    label = u.label
    idea = str(ref_number(arg)) if arg else ""
    fields = (
        FormField("idea", label("fields", "goal_idea"), "number", required=False, initial=idea),
        FormField("title", label("fields", "goal_title"), "text", max_length=200),
        FormField("outcome", label("fields", "outcome"), "long", max_length=1000),
        FormField("metric", label("fields", "metric"), "text", max_length=200),
        FormField("unit", label("fields", "unit"), "text", max_length=50),
        FormField("baseline", label("fields", "baseline"), "number"),
        FormField("target", label("fields", "target"), "number"),
        FormField("deadline", label("fields", "deadline"), "date"),
        FormField("pilot", label("fields", "pilot"), "bool", initial="no"),
        FormField("review_date", label("fields", "review_date"), "date", required=False),
    )
    return fields, u.render(PromptKey.GOAL_INTRO, {})


def _goal_command(f: FormInput) -> c.AddGoal:
    return c.AddGoal(f.ctx, validation.goal_from_form(f.values, f.today), f.round_id)


@cap.command(
    c.AddGoal,
    phases=(Phase.GOALS, Phase.ACTIONS),
    who=Who.CONVENER,
    text=Text("goal", Arg("idea", "int", required=False)),
    button=Button("goal", 1),
    form=FormDef("goal", _goal_fields, _goal_command),
)
async def add_goal(u: Unit, cmd: c.AddGoal) -> None:
    rnd, spec = u.round, cmd.spec
    if spec.idea_number is not None:
        idea = await u.s.scalar(
            select(IdeaRow.id).where(
                IdeaRow.round_id == rnd.id, IdeaRow.number == spec.idea_number, IdeaRow.status == "released"
            )
        )
        if idea is None:
            raise FormErrors({"idea": "unknown_idea"})
    highest = await u.s.scalar(select(func.max(GoalRow.number)).where(GoalRow.round_id == rnd.id))
    goal = GoalRow(
        id=new_id(),
        round_id=rnd.id,
        number=int(highest or 0) + 1,
        idea_number=spec.idea_number,
        title=spec.title,
        outcome=spec.outcome,
        metric=spec.metric,
        unit=spec.unit,
        baseline=spec.baseline,
        target=spec.target,
        deadline=spec.deadline,
        pilot=spec.pilot,
        review_date=spec.review_date,
        # The convener who sets the goal is asked for its metric until someone else is named.
        owner_ref=u.actor.actor.key(),
        checkin_cadence=u.config.followup.checkin_cadence,
    )
    u.s.add(goal)
    await u.s.flush()
    await u.post(goal_card(goal), slot=goal_slot(goal))  # edited in place as follow-up tracks it
    u.reply(PromptKey.GOAL_RECORDED, {"number": goal.number})


@cap.on(PhaseEntered, target=Phase.ACTIONS)
async def open_actions(u: Unit, event: PhaseEntered) -> None:
    rnd = u.round
    goals = list(
        await u.s.scalars(select(GoalRow).where(GoalRow.round_id == rnd.id).order_by(GoalRow.number))
    )
    parts = [
        Part(PromptKey.GOAL_CARD, goal_params(g), (button(rnd.id, "action", g.number, label="add_action"),))
        for g in goals
    ]
    await u.post_chunked(Part(PromptKey.ACTIONS_OPEN, {"title": rnd.title, "goals": len(goals)}), parts)
