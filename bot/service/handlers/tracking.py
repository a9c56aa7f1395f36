"""Goals you can track: follow-up starts when a round closes (every reminder becomes a timer row),
conveners edit a goal through its form (its card is edited in place), and set the round's time zone.
"""

from __future__ import annotations

from sqlalchemy import select

from bot.domain import accountability as acc
from bot.domain import commands as c
from bot.domain import validation
from bot.domain.errors import DomainError, FormErrors
from bot.domain.events import PhaseEntered
from bot.domain.phases import Phase
from bot.domain.rules import Who
from bot.domain.validation import ref_number
from bot.forms import FormField, Option
from bot.persistence.tables import ActionRow, FollowUpRow, GoalRow, RoundRow
from bot.prompts import PromptKey
from bot.sanitize import one_line
from bot.service import followup as fu
from bot.service.cards import num
from bot.service.registry import Arg, Capability, FormDef, FormInput, Text
from bot.service.unit import Unit

cap = Capability("tracking")

FOLLOWED_PHASES = (Phase.GOALS, Phase.ACTIONS, Phase.CLOSED)


async def goal_numbered(u: Unit, rnd: RoundRow, number: int | None) -> GoalRow:
    goal = None
    if number is not None:
        goal = await u.s.scalar(select(GoalRow).where(GoalRow.round_id == rnd.id, GoalRow.number == number))
    if goal is None:
        raise DomainError("unknown_goal")
    return goal


@cap.on(PhaseEntered, target=Phase.CLOSED)
async def start_followup(u: Unit, event: PhaseEntered) -> None:
    """The round's goals and actions are followed up from today: each action's reminders, each
    goal's check-ins and pilot review, and the progress post, all timer rows."""
    rnd = u.round
    goals = list(await u.s.scalars(select(GoalRow).where(GoalRow.round_id == rnd.id)))
    if not goals:
        return
    row = FollowUpRow(
        round_id=rnd.id,
        started_on=fu.local_today(u, rnd),
        progress_days=u.config.followup.progress_days,
        over=False,
    )
    u.s.add(row)
    await u.s.flush()
    for goal in goals:
        await fu.plan_checkin(u, rnd, goal)
        await fu.plan_review(u, rnd, goal)
    for action in await u.s.scalars(select(ActionRow).where(ActionRow.round_id == rnd.id)):
        await fu.plan_action(u, rnd, action)
    fu.plan_progress(u, rnd, row)


# --- editing a goal -------------------------------------------------------------------------------


async def _goal_edit_fields(u: Unit, arg: str | None) -> tuple[tuple[FormField, ...], str]:
    goal = await goal_numbered(u, u.round, ref_number(arg or ""))
    label = u.label
    review = goal.review_date.isoformat() if goal.review_date else ""
    fields = (
        FormField("title", label("fields", "goal_title"), "text", initial=goal.title, max_length=200),
        FormField("outcome", label("fields", "outcome"), "long", initial=goal.outcome, max_length=1000),
        FormField("metric", label("fields", "metric"), "text", initial=goal.metric, max_length=200),
        FormField("unit", label("fields", "unit"), "text", initial=goal.unit, max_length=50),
        FormField("baseline", label("fields", "baseline"), "number", initial=num(goal.baseline)),
        FormField("target", label("fields", "target"), "number", initial=num(goal.target)),
        FormField("deadline", label("fields", "deadline"), "date", initial=goal.deadline.isoformat()),
        FormField("pilot", label("fields", "pilot"), "bool", initial="yes" if goal.pilot else "no"),
        FormField("review_date", label("fields", "review_date"), "date", required=False, initial=review),
        FormField(
            "owner",
            label("fields", "goal_owner"),
            required=False,
            initial=goal.owner_name or "",
            max_length=200,
        ),
        FormField(
            "sponsor", label("fields", "sponsor"), required=False, initial=goal.sponsor or "", max_length=200
        ),
        FormField(
            "data_source",
            label("fields", "data_source"),
            required=False,
            initial=goal.data_source or "",
            max_length=200,
        ),
        FormField(
            "checkin",
            label("fields", "checkin"),
            "select",
            options=tuple(Option(x, label("cadences", x)) for x in acc.CADENCES),
            initial=goal.checkin_cadence or "none",
        ),
    )
    return fields, u.render(PromptKey.GOAL_EDIT_INTRO, {"number": goal.number})


def _goal_edit_command(f: FormInput) -> c.EditGoal:
    spec, tracking = validation.goal_edit_from_form(f.values, acc.CADENCES)
    return c.EditGoal(f.ctx, ref_number(f.arg or ""), spec, tracking, f.round_id)


@cap.command(
    c.EditGoal,
    phases=FOLLOWED_PHASES,
    who=Who.CONVENER,
    locate=fu.locate_here,
    text=Text("editgoal", Arg("goal", "int", required=True)),
    form=FormDef("goal_edit", _goal_edit_fields, _goal_edit_command),
)
async def edit_goal(u: Unit, cmd: c.EditGoal) -> None:
    rnd, spec, tracking = u.round, cmd.spec, cmd.tracking
    goal = await goal_numbered(u, rnd, cmd.goal)
    today = u.today()
    late = {}
    if spec.deadline != goal.deadline and spec.deadline <= today:
        late["deadline"] = "date_in_past"
    if spec.review_date and spec.review_date != goal.review_date and spec.review_date <= today:
        late["review_date"] = "date_in_past"
    if late:
        raise FormErrors(late)
    goal.title, goal.outcome, goal.metric, goal.unit = spec.title, spec.outcome, spec.metric, spec.unit
    goal.baseline, goal.target, goal.deadline = spec.baseline, spec.target, spec.deadline
    goal.pilot, goal.review_date = spec.pilot, spec.review_date
    if tracking.owner != goal.owner_name:
        goal.owner_ref = acc.owner_after_edit(goal.owner_name, goal.owner_ref, tracking.owner)
        goal.owner_name = tracking.owner
    goal.sponsor, goal.data_source, goal.checkin_cadence = (
        tracking.sponsor,
        tracking.data_source,
        tracking.cadence,
    )
    await fu.plan_checkin(u, rnd, goal)
    await fu.plan_review(u, rnd, goal)
    await fu.show_goal(u, rnd, goal)
    u.reply(PromptKey.GOAL_UPDATED, {"number": goal.number})


# --- the round's time zone ------------------------------------------------------------------------


@cap.command(
    c.SetTimezone,
    phases=(*FOLLOWED_PHASES, Phase.CONTRIBUTE, Phase.VOTE),
    who=Who.CONVENER,
    locate=fu.locate_here,
    text=Text(
        "timezone", Arg("zone", "str", required=True), build=lambda ctx, rest: c.SetTimezone(ctx, rest)
    ),
)
async def set_timezone(u: Unit, cmd: c.SetTimezone) -> None:
    rnd = u.round
    zone = one_line(cmd.zone)[:64]
    acc.zone(zone)  # refuses an unknown zone, naming it
    old = fu.tz_of(u, rnd)
    rnd.settings = {**rnd.settings, "timezone": zone}
    await fu.retime(u, rnd, old)
    params = {"title": rnd.title, "zone": zone, "hour": u.config.followup.reminder_hour}
    u.reply(PromptKey.TIMEZONE_SET, params)
