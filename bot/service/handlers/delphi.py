"""Delphi targets (optional, per goal): participants estimate a goal's target anonymously; the median
and interquartile range are shown once k estimates are in (and at every further k); a second round
shows the first round's spread; a convener fixes the target.

Estimates are stored the way ballots are: an HMAC under the round key while the Delphi runs (one
estimate per person and round), random labels in shuffled order once it is fixed or the round ends.
A spread is published only in batches of k, so no figure moves with one person's estimate.
"""

from __future__ import annotations

from sqlalchemy import delete, select

from bot.domain import accountability as acc
from bot.domain import commands as c
from bot.domain import validation
from bot.domain.errors import DomainError, FormErrors
from bot.domain.events import PhaseEntered
from bot.domain.phases import Phase
from bot.domain.rules import Who
from bot.domain.validation import ref_number
from bot.forms import FormField
from bot.ids import new_id
from bot.messages import ButtonSpec, Message, Part
from bot.persistence.tables import DelphiRow, EstimateRow, GoalRow, RoundRow
from bot.prompts import PromptKey
from bot.service import followup as fu
from bot.service.cards import num
from bot.service.registry import Arg, Button, Capability, FormDef, FormInput, Text
from bot.service.unit import Unit, button

cap = Capability("delphi")

DELPHI_PHASES = (Phase.GOALS, Phase.ACTIONS)
OPEN, FIXED, CLOSED = "open", "fixed", "closed"


def delphi_slot(goal: GoalRow) -> str:
    return f"delphi:{goal.id}"


def k_of(rnd: RoundRow) -> int:
    """The round's k: as for sector figures, nothing is shown about fewer than k people."""
    return max(1, int(rnd.settings.get("sector_min_voters", 5)))


def _shown(spread: dict[str, float] | None) -> dict[str, str | int] | None:
    if not spread:
        return None
    return {
        "n": int(spread["n"]),
        "median": num(spread["median"]),
        "q1": num(spread["q1"]),
        "q3": num(spread["q3"]),
    }


def delphi_card(rnd: RoundRow, goal: GoalRow, d: DelphiRow) -> Message:
    params = {
        "number": goal.number,
        "title": goal.title,
        "metric": goal.metric,
        "unit": goal.unit,
        "baseline": num(goal.baseline),
        "target": num(goal.target),
        "deadline": goal.deadline.isoformat(),
        "stage": d.stage,
        "first": _shown(d.published.get("1")) if d.stage == 2 else None,
        "now": _shown(d.published.get(str(d.stage))),
        "k": k_of(rnd),
        "fixed": num(d.fixed_target) if d.fixed_target is not None else None,
        "closed": d.status == CLOSED,
    }
    buttons: tuple[ButtonSpec, ...] = ()
    if d.status == OPEN:
        verbs = [
            ("est", "estimate"),
            *([("d2", "delphi_next")] if d.stage == 1 else []),
            ("dfix", "fix_target"),
        ]
        buttons = tuple(button(rnd.id, verb, goal.number, label=label) for verb, label in verbs)
    return Message((Part(PromptKey.DELPHI_CARD, params, buttons),))


async def _goal(u: Unit, number: int | None) -> GoalRow:
    goal = None
    if number is not None:
        goal = await u.s.scalar(
            select(GoalRow).where(GoalRow.round_id == u.round.id, GoalRow.number == number)
        )
    if goal is None:
        raise DomainError("unknown_goal")
    return goal


async def _open_delphi(u: Unit, goal: GoalRow) -> DelphiRow:
    # Locked (PostgreSQL) so that two estimates arriving together count, and publish, in turn.
    d = await u.s.scalar(select(DelphiRow).where(DelphiRow.goal_id == goal.id).with_for_update())
    if d is None or d.status != OPEN:
        raise DomainError("no_delphi")
    return d


async def _show(u: Unit, goal: GoalRow, d: DelphiRow) -> None:
    await u.post(delphi_card(u.round, goal, d), slot=delphi_slot(goal))


def _number(rest: str) -> int | None:
    text = rest.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


@cap.command(
    c.StartDelphi,
    phases=DELPHI_PHASES,
    who=Who.CONVENER,
    text=Text(
        "delphi", Arg("goal", "int", required=True), build=lambda ctx, rest: c.StartDelphi(ctx, _number(rest))
    ),
)
async def start(u: Unit, cmd: c.StartDelphi) -> None:
    goal = await _goal(u, cmd.goal)
    d = await u.s.get(DelphiRow, goal.id)
    if d is not None and d.status == OPEN:
        raise DomainError("delphi_running", number=goal.number)
    if d is None:
        d = DelphiRow(goal_id=goal.id, round_id=u.round.id)
        u.s.add(d)
    else:  # a new Delphi on a goal whose earlier one was fixed: its estimates go
        await u.s.execute(delete(EstimateRow).where(EstimateRow.goal_id == goal.id))
    d.stage, d.status, d.published, d.fixed_target = 1, OPEN, {}, None
    await u.s.flush()
    await _show(u, goal, d)
    u.reply(PromptKey.DELPHI_STARTED, {"number": goal.number, "stage": 1})


async def _estimate_fields(u: Unit, arg: str | None) -> tuple[tuple[FormField, ...], str]:
    goal = await _goal(u, ref_number(arg or ""))
    await _open_delphi(u, goal)
    fields = (FormField("estimate", u.label("fields", "estimate"), "number"),)
    params = {"number": goal.number, "metric": goal.metric, "unit": goal.unit, "baseline": num(goal.baseline)}
    return fields, u.render(PromptKey.ESTIMATE_INTRO, params)


def _estimate_command(f: FormInput) -> c.Estimate:
    assert f.round_id is not None
    return c.Estimate(
        f.ctx, f.round_id, ref_number(f.arg or ""), validation.number_from_form(f.values, "estimate")
    )


@cap.command(
    c.Estimate,
    phases=DELPHI_PHASES,
    who=Who.MEMBER,
    button=Button("est", 1),
    form=FormDef("estimate", _estimate_fields, _estimate_command),
)
async def estimate(u: Unit, cmd: c.Estimate) -> None:
    rnd = u.round
    goal = await _goal(u, cmd.goal)
    d = await _open_delphi(u, goal)
    voter = u.pseudonym()
    mine = await u.s.scalar(
        select(EstimateRow.id).where(
            EstimateRow.goal_id == goal.id, EstimateRow.stage == d.stage, EstimateRow.voter_key == voter
        )
    )
    if mine is not None:
        raise DomainError("estimate_given")
    u.s.add(
        EstimateRow(
            id=new_id(), round_id=rnd.id, goal_id=goal.id, stage=d.stage, voter_key=voter, value=cmd.value
        )
    )
    await u.s.flush()
    values = list(
        await u.s.scalars(
            select(EstimateRow.value).where(EstimateRow.goal_id == goal.id, EstimateRow.stage == d.stage)
        )
    )
    if acc.publishes(len(values), k_of(rnd)):
        d.published = {**d.published, str(d.stage): acc.spread(values).to_json()}
        await _show(u, goal, d)
    u.reply(PromptKey.ESTIMATE_RECORDED, {})


@cap.command(
    c.NextDelphiRound,
    phases=DELPHI_PHASES,
    who=Who.CONVENER,
    button=Button("d2", 1, build=lambda ctx, rid, args: c.NextDelphiRound(ctx, rid, ref_number(args[0]))),
)
async def second_round(u: Unit, cmd: c.NextDelphiRound) -> None:
    goal = await _goal(u, cmd.goal)
    d = await _open_delphi(u, goal)
    if d.stage != 1:
        raise DomainError("delphi_stage_two")
    if "1" not in d.published:
        raise DomainError("delphi_needs_k", k=k_of(u.round))
    d.stage = 2
    await _show(u, goal, d)
    u.reply(PromptKey.DELPHI_STARTED, {"number": goal.number, "stage": 2})


async def _fix_fields(u: Unit, arg: str | None) -> tuple[tuple[FormField, ...], str]:
    goal = await _goal(u, ref_number(arg or ""))
    d = await _open_delphi(u, goal)
    latest = d.published.get(str(d.stage)) or d.published.get("1")
    median = num(latest["median"]) if latest else None
    fields = (FormField("target", u.label("fields", "target"), "number", initial=median or num(goal.target)),)
    params = {"number": goal.number, "metric": goal.metric, "unit": goal.unit, "median": median}
    return fields, u.render(PromptKey.FIX_INTRO, params)


def _fix_command(f: FormInput) -> c.FixTarget:
    assert f.round_id is not None
    return c.FixTarget(
        f.ctx, f.round_id, ref_number(f.arg or ""), validation.number_from_form(f.values, "target")
    )


@cap.command(
    c.FixTarget,
    phases=DELPHI_PHASES,
    who=Who.CONVENER,
    button=Button("dfix", 1),
    form=FormDef("fix_target", _fix_fields, _fix_command),
)
async def fix_target(u: Unit, cmd: c.FixTarget) -> None:
    goal = await _goal(u, cmd.goal)
    d = await _open_delphi(u, goal)
    if cmd.target == goal.baseline:
        raise FormErrors({"target": "target_equals_baseline"})
    goal.target = d.fixed_target = cmd.target
    d.status = FIXED
    await detach_estimates(u, goal.id)
    await _show(u, goal, d)
    await fu.show_goal(u, u.round, goal)
    u.reply(PromptKey.TARGET_FIXED, {"number": goal.number, "target": num(cmd.target), "unit": goal.unit})


@cap.on(PhaseEntered, target=(Phase.CLOSED, Phase.CANCELLED))
async def close_with_the_round(u: Unit, event: PhaseEntered) -> None:
    """The round key goes at close: a Delphi still open closes (its estimates detached) and its card
    says so; the goal keeps the target it had."""
    rnd = u.round
    running = list(
        await u.s.scalars(select(DelphiRow).where(DelphiRow.round_id == rnd.id, DelphiRow.status == OPEN))
    )
    for d in running:
        d.status = CLOSED
        goal = await u.s.get(GoalRow, d.goal_id)
        if goal is not None:
            await _show(u, goal, d)
    for goal_id in set(await u.s.scalars(select(EstimateRow.goal_id).where(EstimateRow.round_id == rnd.id))):
        await detach_estimates(u, goal_id)


async def detach_estimates(u: Unit, goal_id: str) -> None:
    """Each estimate under a fresh random label, rewritten in shuffled order with new ids: not even
    the round key (recovered from a backup) links anyone to one afterwards."""
    rows = list(await u.s.scalars(select(EstimateRow).where(EstimateRow.goal_id == goal_id)))
    if not rows:
        return
    copies = [(r.round_id, r.stage, r.value) for r in rows]
    u.rng.shuffle(copies)
    await u.s.execute(delete(EstimateRow).where(EstimateRow.goal_id == goal_id))
    await u.s.flush()
    for round_id, stage, value in copies:
        u.s.add(
            EstimateRow(
                id=new_id(), round_id=round_id, goal_id=goal_id, stage=stage, voter_key=new_id(), value=value
            )
        )
    await u.s.flush()
