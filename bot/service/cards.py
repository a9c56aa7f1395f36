"""Cards more than one capability shows (the goal card: when actions open, and in the summary)."""

from __future__ import annotations

from typing import Any

from bot.persistence.tables import GoalRow


def goal_params(g: GoalRow) -> dict[str, Any]:
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
    }


def num(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e15 else str(value)
