"""Actions with owners: conveners add actions to goals, anyone who joined can take an open one, and
the closing summary lists goals and actions in every linked channel."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.domain import commands as c
from bot.domain import rules, validation
from bot.domain.errors import DomainError, FormErrors
from bot.domain.events import PhaseEntered
from bot.domain.phases import Phase
from bot.domain.rules import Who
from bot.domain.validation import ref_number
from bot.forms import FormField
from bot.ids import new_id
from bot.messages import Message, Part
from bot.persistence.tables import ActionRow, GoalRow, IdeaRow, RoundRow
from bot.prompts import PromptKey
from bot.sanitize import one_line
from bot.service.cards import goal_params
from bot.service.registry import Arg, Button, Capability, FormDef, FormInput, Text
from bot.service.unit import Unit, button

cap = Capability("actions")


def action_slot(action: ActionRow) -> str:
    return f"action:{action.id}"


def action_card(rnd: RoundRow, action: ActionRow, goal: GoalRow) -> Message:
    buttons = tuple(
        button(rnd.id, verb, action.number, style="primary")
        for verb in rules.action_card_buttons(rnd.phase, action.owner_name)
    )
    params = {
        "number": action.number,
        "title": action.title,
        "goal": goal.number,
        "goal_title": goal.title,
        "owner": action.owner_name,
        "due": action.due.isoformat(),
    }
    return Message((Part(PromptKey.ACTION_CARD, params, buttons),))


async def _action_fields(u: Unit, arg: str | None) -> tuple[tuple[FormField, ...], str]:
    label = u.label
    goal = str(ref_number(arg)) if arg else ""
    fields = (
        FormField("goal", label("fields", "action_goal"), "number", initial=goal),
        FormField("title", label("fields", "action_title"), "text", max_length=200),
        FormField("owner", label("fields", "owner"), "text", required=False, max_length=200),
        FormField("due", label("fields", "due"), "date"),
    )
    return fields, u.render(PromptKey.ACTION_INTRO, {})


def _action_command(f: FormInput) -> c.AddAction:
    return c.AddAction(f.ctx, validation.action_from_form(f.values, f.today), f.round_id)


@cap.command(
    c.AddAction,
    phases=(Phase.ACTIONS,),
    who=Who.CONVENER,
    text=Text("action", Arg("goal", "int", required=False)),
    button=Button("action", 1),
    form=FormDef("action", _action_fields, _action_command),
)
async def add_action(u: Unit, cmd: c.AddAction) -> None:
    rnd, spec = u.round, cmd.spec
    goal = await u.s.scalar(
        select(GoalRow).where(GoalRow.round_id == rnd.id, GoalRow.number == spec.goal_number)
    )
    if goal is None:
        raise FormErrors({"goal": "unknown_goal"})
    highest = await u.s.scalar(select(func.max(ActionRow.number)).where(ActionRow.round_id == rnd.id))
    action = ActionRow(
        id=new_id(),
        round_id=rnd.id,
        goal_id=goal.id,
        number=int(highest or 0) + 1,
        title=spec.title,
        owner_name=spec.owner,
        owner_ref=None,
        due=spec.due,
        status="open",
    )
    u.s.add(action)
    await u.s.flush()
    await u.post(action_card(rnd, action, goal), slot=action_slot(action))
    u.reply(PromptKey.ACTION_RECORDED, {"number": action.number})


@cap.command(
    c.Volunteer,
    phases=(Phase.ACTIONS,),
    who=Who.MEMBER_OR_CONVENER,
    button=Button("take", 1, build=lambda ctx, rid, args: c.Volunteer(ctx, rid, ref_number(args[0]))),
)
async def volunteer(u: Unit, cmd: c.Volunteer) -> None:
    rnd, ctx = u.round, u.actor
    action = await u.s.scalar(
        select(ActionRow).where(ActionRow.round_id == rnd.id, ActionRow.number == cmd.action)
    )
    if action is None:
        raise DomainError("unknown_action")
    rules.check_volunteer(action.owner_name)
    # Attributed on purpose (accountability); a profile name is canonical text like any other.
    action.owner_name = one_line(ctx.actor.display_name)[:200] or ctx.actor.user_id
    action.owner_ref = ctx.actor.key()
    goal = await u.s.get(GoalRow, action.goal_id)
    assert goal is not None
    await u.post(action_card(rnd, action, goal), slot=action_slot(action))
    u.reply(PromptKey.ACTION_TAKEN, {"number": action.number, "title": action.title})


@cap.on(PhaseEntered, target=Phase.CLOSED)
async def summarise(u: Unit, event: PhaseEntered) -> None:
    rnd = u.round
    ideas = await u.s.scalars(
        select(IdeaRow)
        .where(IdeaRow.round_id == rnd.id, IdeaRow.rank.is_not(None))
        .order_by(IdeaRow.rank)
        .limit(5)
    )
    goals = list(
        await u.s.scalars(select(GoalRow).where(GoalRow.round_id == rnd.id).order_by(GoalRow.number))
    )
    actions = await u.s.scalars(
        select(ActionRow).where(ActionRow.round_id == rnd.id).order_by(ActionRow.number)
    )
    goal_numbers = {g.id: g.number for g in goals}
    params = {
        "title": rnd.title,
        "purpose": rnd.purpose,
        "ideas": [{"label": i.number, "text": i.text, "score": round((i.score or 0) * 100)} for i in ideas],
        "goals": [goal_params(g) for g in goals],
        "actions": [
            {
                "number": a.number,
                "title": a.title,
                "goal": goal_numbers.get(a.goal_id),
                "owner": a.owner_name,
                "due": a.due.isoformat(),
            }
            for a in actions
        ],
    }
    await u.post(Message((Part(PromptKey.SUMMARY, params),)))
