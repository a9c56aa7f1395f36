"""Actions with owners: conveners add actions to goals (and resource them: owner, sponsor, resources,
due date), anyone who joined can take an open one, everyone can list theirs with their status, and
the closing summary lists goals and actions in every linked channel."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from bot.domain import accountability as acc
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
from bot.service import followup as fu
from bot.service import queries
from bot.service.cards import action_card, action_slot, goal_params
from bot.service.registry import Arg, Button, Capability, FormDef, FormInput, Text
from bot.service.unit import Unit, button

cap = Capability("actions")


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
        status="not_started",
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
        # Follow-up starts with the close (the followup capability reacts to it after this one).
        "followup": {"every": u.config.followup.progress_days} if goals else None,
    }
    await u.post(Message((Part(PromptKey.SUMMARY, params),)))


# --- actions you can resource: edit, list -------------------------------------------------------


async def action_numbered(
    u: Unit, rnd: RoundRow, number: int | None, missing: str = "unknown_action"
) -> ActionRow:
    action = None
    if number is not None:
        action = await u.s.scalar(
            select(ActionRow).where(ActionRow.round_id == rnd.id, ActionRow.number == number)
        )
    if action is None:
        raise DomainError(missing)
    return action


async def _action_edit_fields(u: Unit, arg: str | None) -> tuple[tuple[FormField, ...], str]:
    action = await action_numbered(u, u.round, ref_number(arg or ""))
    label = u.label
    fields = (
        FormField("title", label("fields", "action_title"), "text", initial=action.title, max_length=200),
        FormField(
            "owner", label("fields", "owner"), required=False, initial=action.owner_name or "", max_length=200
        ),
        FormField(
            "sponsor",
            label("fields", "sponsor"),
            required=False,
            initial=action.sponsor or "",
            max_length=200,
        ),
        FormField(
            "resources",
            label("fields", "resources"),
            "long",
            False,
            initial=action.resources or "",
            max_length=1000,
        ),
        FormField("due", label("fields", "due"), "date", initial=action.due.isoformat()),
    )
    return fields, u.render(PromptKey.ACTION_EDIT_INTRO, {"number": action.number})


def _action_edit_command(f: FormInput) -> c.EditAction:
    return c.EditAction(
        f.ctx, ref_number(f.arg or ""), validation.action_edit_from_form(f.values, f.today), f.round_id
    )


@cap.command(
    c.EditAction,
    phases=(Phase.ACTIONS, Phase.CLOSED),
    who=Who.CONVENER,
    locate=fu.locate_here,
    text=Text("editaction", Arg("action", "int", required=True)),
    form=FormDef("action_edit", _action_edit_fields, _action_edit_command),
)
async def edit_action(u: Unit, cmd: c.EditAction) -> None:
    rnd, edit = u.round, cmd.edit
    action = await action_numbered(u, rnd, cmd.action)
    action.title = edit.title
    if edit.owner != action.owner_name:
        action.owner_ref = acc.owner_after_edit(action.owner_name, action.owner_ref, edit.owner)
        action.owner_name = edit.owner
    action.sponsor, action.resources = edit.sponsor, edit.resources
    fu.moved_due(action, edit.due)
    await fu.plan_action(u, rnd, action)
    await fu.show_action(u, rnd, action)
    u.reply(PromptKey.ACTION_UPDATED, {"number": action.number})


def _which(rest: str) -> str:
    return "all" if rest.strip().lower() == "all" else "mine"


@cap.command(
    c.ListActions,
    in_round=False,
    text=Text("actions", build=lambda ctx, rest: c.ListActions(ctx, _which(rest))),
    button=Button(
        "acts",
        build=lambda ctx, rid, _args: c.ListActions(ctx, "all", None if rid == "-" else rid),
    ),
)
async def list_actions(u: Unit, cmd: c.ListActions) -> None:
    """Mine: every action I own, in every round (with its status); all: every action of the round
    here (open, or the latest one followed up here)."""
    ctx = u.actor
    found = select(ActionRow, RoundRow, GoalRow.number).join(RoundRow, RoundRow.id == ActionRow.round_id)
    found = found.join(GoalRow, GoalRow.id == ActionRow.goal_id).where(RoundRow.phase != Phase.CANCELLED)
    if cmd.which == "all":
        if cmd.round_id is not None:
            rnd = await queries.round_linked_here(u.s, ctx.where, cmd.round_id)
        else:
            here = await fu.round_followed_here(u, ctx.where)
            if here is None:
                raise DomainError("no_round_here")
            rnd = here
        found = found.where(ActionRow.round_id == rnd.id)
        title = rnd.title
    else:
        found = found.where(fu.owned_by(ActionRow.owner_ref, ctx.actor.key()))
        title = None
    rows = (await u.s.execute(found.order_by(RoundRow.title, RoundRow.id, ActionRow.number))).all()
    rounds: dict[str, dict[str, Any]] = {}
    for action, rnd, goal_number in rows:
        today = acc.local_day(u.now(), fu.tz_of(u, rnd))
        group = rounds.setdefault(rnd.id, {"title": rnd.title, "actions": []})
        group["actions"].append(
            {
                "number": action.number,
                "title": action.title,
                "goal": goal_number,
                "owner": action.owner_name,
                "due": action.due.isoformat(),
                "status": action.status,
                "overdue": acc.is_overdue(action.due, action.status, today),
            }
        )
    buttons = (button("-", "acts", label="all_actions"),) if cmd.which == "mine" else ()
    params = {"which": cmd.which, "title": title, "rounds": list(rounds.values())}
    u.reply(PromptKey.ACTIONS_LIST, params, buttons)
