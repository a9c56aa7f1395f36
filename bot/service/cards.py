"""Cards more than one capability shows: the goal card (when it is set, when actions open, in the
summary, and edited in place as follow-up tracks it) and the action card."""

from __future__ import annotations

from typing import Any

from bot.domain import accountability, rules
from bot.messages import Message, Part
from bot.persistence.tables import ActionRow, GoalRow, RoundRow
from bot.prompts import PromptKey
from bot.service.unit import button


def goal_slot(goal: GoalRow) -> str:
    return f"goal:{goal.id}"


def action_slot(action: ActionRow) -> str:
    return f"action:{action.id}"


def goal_params(g: GoalRow) -> dict[str, Any]:
    progress = accountability.progress(g.baseline, g.target, g.current)
    return {
        "number": g.number,
        "idea": g.idea_number,
        "title": g.title,
        "outcome": g.outcome,
        "metric": g.metric,
        "unit": g.unit,
        "baseline": num(g.baseline),
        "target": num(g.target),
        "deadline": g.deadline.isoformat(),
        "pilot": g.pilot,
        "review_date": g.review_date.isoformat() if g.review_date else None,
        "owner": g.owner_name,
        "sponsor": g.sponsor,
        "data_source": g.data_source,
        "current": num(g.current) if g.current is not None else None,
        "progress": progress.params() if progress else None,
        "decision": g.pilot_decision,
        "decision_note": g.pilot_note,
        "decided_on": g.pilot_decided_on.isoformat() if g.pilot_decided_on else None,
    }


def goal_card(g: GoalRow) -> Message:
    return Message((Part(PromptKey.GOAL_CARD, goal_params(g)),))


def action_params(action: ActionRow, goal: GoalRow) -> dict[str, Any]:
    return {
        "number": action.number,
        "title": action.title,
        "goal": goal.number,
        "goal_title": goal.title,
        "owner": action.owner_name,
        "due": action.due.isoformat(),
        "status": action.status,
        "sponsor": action.sponsor,
        "resources": action.resources,
    }


def action_card(rnd: RoundRow, action: ActionRow, goal: GoalRow) -> Message:
    buttons = tuple(
        button(rnd.id, verb, action.number, style="primary")
        for verb in rules.action_card_buttons(rnd.phase, action.owner_name)
    )
    return Message((Part(PromptKey.ACTION_CARD, action_params(action, goal), buttons),))


def num(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e15 else str(value)
