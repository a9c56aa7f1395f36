"""What people type into forms becomes typed values, or every problem at once, named per field."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.domain import validation as v
from bot.domain.errors import DomainError, FormErrors

TODAY = dt.date(2026, 11, 26)
GOAL = {
    "title": "Safe routes",
    "outcome": "Children walk to school safely",
    "metric": "Schools with a safe route",
    "unit": "schools",
    "baseline": "4",
    "target": "32",
    "deadline": "2027-09-01",
    "pilot": "no",
    "review_date": "",
}


def errors(fn: object, *args: object, **kwargs: object) -> dict[str, str]:
    with pytest.raises(FormErrors) as err:
        fn(*args, **kwargs)  # type: ignore[operator]
    return err.value.fields


def test_a_goal_is_parsed_with_numbers_and_dates() -> None:
    spec = v.goal_from_form({**GOAL, "baseline": "1,200", "target": "1 500.5", "idea": "3"}, TODAY)
    assert (spec.baseline, spec.target, spec.idea_number) == (1200.0, 1500.5, 3)
    assert spec.deadline == dt.date(2027, 9, 1)
    assert spec.pilot is False


def test_a_goal_form_reports_every_problem_at_once() -> None:
    bad = {
        **GOAL,
        "title": "",
        "baseline": "lots",
        "target": "NaN",
        "deadline": "2026-11-26",
        "pilot": "maybe",
    }
    assert errors(v.goal_from_form, bad, TODAY) == {
        "title": "required",
        "baseline": "not_a_number",
        "target": "not_a_number",
        "deadline": "date_in_past",
        "pilot": "not_yes_no",
    }


@pytest.mark.parametrize(
    ("over", "field", "problem"),
    [
        ({"target": "4"}, "target", "target_equals_baseline"),
        ({"pilot": "yes"}, "review_date", "required"),
        ({"review_date": "2027-01-01"}, "review_date", "review_without_pilot"),
        ({"pilot": "yes", "review_date": "2027-10-01"}, "review_date", "review_after_deadline"),
        ({"deadline": "01/09/2027"}, "deadline", "not_a_date"),
        ({"idea": "0"}, "idea", "out_of_range"),
        ({"baseline": "1e400"}, "baseline", "not_a_number"),
    ],
)
def test_goal_rules(over: dict[str, str], field: str, problem: str) -> None:
    assert errors(v.goal_from_form, {**GOAL, **over}, TODAY)[field] == problem


def test_an_action_needs_a_goal_a_title_and_a_due_date_from_today_on() -> None:
    spec = v.action_from_form({"goal": "1", "title": "Map routes", "owner": "", "due": "2026-11-26"}, TODAY)
    assert (spec.goal_number, spec.owner, spec.due) == (1, None, TODAY)
    assert errors(v.action_from_form, {"goal": "", "title": "", "due": "2026-11-25"}, TODAY) == {
        "goal": "required",
        "title": "required",
        "due": "date_in_past",
    }


def test_a_round_needs_a_title_a_purpose_and_a_known_template() -> None:
    spec = v.round_from_form({"title": " T ", "purpose": "P", "vote_minutes": "30"}, ["standard", "quick"])
    assert (spec.title, spec.template, spec.minutes) == ("T", "standard", {"contribute": None, "vote": 30})
    assert errors(v.round_from_form, {"title": "T", "purpose": "P", "template": "x"}, ["standard"]) == {
        "template": "unknown_choice"
    }


def test_contributions_are_canonical_text_within_the_rounds_limits() -> None:
    assert (
        v.contribution_from_form({"text": "  Fix\u202e the  lights "}, min_len=1, max_len=20)
        == "Fix the lights"
    )
    assert errors(v.contribution_from_form, {"text": "   "}, min_len=1, max_len=20) == {"text": "required"}
    assert errors(v.contribution_from_form, {"text": "x" * 21}, min_len=1, max_len=20) == {"text": "too_long"}
    assert errors(v.contribution_from_form, {"text": "ab"}, min_len=3, max_len=20) == {"text": "too_short"}


def test_a_sector_is_optional_and_one_of_the_rounds() -> None:
    assert v.sector_from_form({"sector": ""}, ["business"]) is None
    assert v.sector_from_form({"sector": "business"}, ["business"]) == "business"
    assert errors(v.sector_from_form, {"sector": "army"}, ["business"]) == {"sector": "unknown_choice"}


def test_a_rating_needs_at_least_one_score_from_one_to_five() -> None:
    assert v.rating_from_form({"urgency": "5", "impact": ""}) == (5, None)
    assert errors(v.rating_from_form, {"urgency": "", "impact": ""}) == {"urgency": "required"}
    assert errors(v.rating_from_form, {"urgency": "6"}) == {"urgency": "out_of_range"}


@pytest.mark.parametrize("tampered", ["", "x", "-1", "1.5", "1234567890", "\u0663", "1 "])
def test_a_tampered_number_in_a_button_is_refused(tampered: str) -> None:
    with pytest.raises(DomainError) as err:
        v.ref_number(tampered)
    assert err.value.code == "unknown_button"
    assert v.ref_number("42") == 42
