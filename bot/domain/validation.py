"""Parsing and validating what people type into forms. Every failure names the field and a reason
code (a label in prompts/<lang>/labels.yaml under "field_errors")."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.domain.errors import DomainError, FormErrors
from bot.sanitize import canonical_text, one_line

_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
YES = {"yes", "y", "true", "1", "on", "pilot"}
NO = {"no", "n", "false", "0", "off", ""}


def ref_number(text: str) -> int:
    """The number of an idea, goal or action carried in a button or form id (at most nine digits);
    anything else is a tampered id."""
    if not text.isdigit() or not text.isascii() or len(text) > 9:
        raise DomainError("unknown_button")
    return int(text)


def parse_number(text: str) -> float | None:
    t = text.strip().replace(" ", "").replace("_", "")
    if _THOUSANDS.match(t):
        t = t.replace(",", "")
    if not _NUMBER.match(t):
        return None
    value = float(t)
    return value if math.isfinite(value) and abs(value) < 1e15 else None


def parse_date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        return None


def parse_bool(text: str) -> bool | None:
    t = text.strip().lower()
    if t in YES:
        return True
    if t in NO:
        return False
    return None


class _Fields:
    """Collects field errors so a form reports every problem at once."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = values
        self.errors: dict[str, str] = {}

    def text(self, name: str, *, max_len: int, min_len: int = 1, multiline: bool = False) -> str:
        raw = self.values.get(name) or ""
        value = canonical_text(raw) if multiline else one_line(raw)
        if len(value) < min_len:
            self.errors[name] = "required" if not value else "too_short"
        elif len(value) > max_len:
            self.errors[name] = "too_long"
        return value

    def optional_long_text(self, name: str, *, max_len: int) -> str | None:
        value = canonical_text(self.values.get(name) or "")
        if len(value) > max_len:
            self.errors[name] = "too_long"
        return value or None

    def optional_text(self, name: str, *, max_len: int) -> str | None:
        value = one_line(self.values.get(name) or "")
        if len(value) > max_len:
            self.errors[name] = "too_long"
        return value or None

    def number(self, name: str) -> float:
        value = parse_number(self.values.get(name) or "")
        if value is None:
            self.errors[name] = "not_a_number"
            return 0.0
        return value

    def date(self, name: str, *, required: bool = True, after: dt.date | None = None) -> dt.date | None:
        raw = (self.values.get(name) or "").strip()
        if not raw:
            if required:
                self.errors[name] = "required"
            return None
        value = parse_date(raw)
        if value is None:
            self.errors[name] = "not_a_date"
        elif after is not None and value <= after:
            self.errors[name] = "date_in_past"
        return value

    def optional_int(self, name: str, *, low: int, high: int) -> int | None:
        raw = (self.values.get(name) or "").strip()
        if not raw:
            return None
        if not raw.isdigit() or not low <= int(raw) <= high:
            self.errors[name] = "out_of_range"
            return None
        return int(raw)

    def check(self) -> None:
        if self.errors:
            raise FormErrors(dict(self.errors))


@dataclass(frozen=True, slots=True)
class GoalSpec:
    idea_number: int | None
    title: str
    outcome: str
    metric: str
    unit: str
    baseline: float
    target: float
    deadline: dt.date
    pilot: bool
    review_date: dt.date | None


def goal_from_form(values: Mapping[str, str], today: dt.date) -> GoalSpec:
    f = _Fields(values)
    spec = _goal(f, values, f.optional_int("idea", low=1, high=100_000), after=today)
    f.check()
    return spec


def _goal(f: _Fields, values: Mapping[str, str], idea: int | None, *, after: dt.date | None) -> GoalSpec:
    """The goal's own fields; ``after``: dates must be later (None when editing, where the handler
    checks only the dates that changed)."""
    title = f.text("title", max_len=200)
    outcome = f.text("outcome", max_len=1000, multiline=True)
    metric = f.text("metric", max_len=200)
    unit = f.text("unit", max_len=50)
    baseline = f.number("baseline")
    target = f.number("target")
    if "baseline" not in f.errors and "target" not in f.errors and baseline == target:
        f.errors["target"] = "target_equals_baseline"
    deadline = f.date("deadline", after=after)
    pilot = parse_bool(values.get("pilot") or "")
    if pilot is None:
        f.errors["pilot"] = "not_yes_no"
        pilot = False
    review = f.date("review_date", required=pilot, after=after)
    if review and not pilot:
        f.errors["review_date"] = "review_without_pilot"
    if review and deadline and review > deadline:
        f.errors["review_date"] = "review_after_deadline"
    # A missing deadline is a field error: check() raises before the placeholder is used.
    return GoalSpec(
        idea, title, outcome, metric, unit, baseline, target, deadline or dt.date.min, pilot, review
    )


@dataclass(frozen=True, slots=True)
class ActionSpec:
    goal_number: int
    title: str
    owner: str | None
    due: dt.date


def action_from_form(values: Mapping[str, str], today: dt.date) -> ActionSpec:
    f = _Fields(values)
    goal = f.optional_int("goal", low=1, high=100_000)
    if goal is None and "goal" not in f.errors:
        f.errors["goal"] = "required"
    title = f.text("title", max_len=200)
    owner = f.optional_text("owner", max_len=200)
    due = f.date("due", after=today - dt.timedelta(days=1))
    f.check()
    assert goal is not None
    assert due is not None
    return ActionSpec(goal, title, owner, due)


@dataclass(frozen=True, slots=True)
class RoundSpec:
    title: str
    purpose: str
    template: str
    minutes: dict[str, int | None]


def round_from_form(values: Mapping[str, str], templates: list[str]) -> RoundSpec:
    f = _Fields(values)
    title = f.text("title", max_len=200)
    purpose = f.text("purpose", max_len=2000, multiline=True)
    template = (values.get("template") or "").strip() or templates[0]
    if template not in templates:
        f.errors["template"] = "unknown_choice"
    minutes = {
        "contribute": f.optional_int("contribute_minutes", low=1, high=60 * 24 * 90),
        "vote": f.optional_int("vote_minutes", low=1, high=60 * 24 * 90),
    }
    f.check()
    return RoundSpec(title, purpose, template, minutes)


def contribution_from_form(values: Mapping[str, str], *, min_len: int, max_len: int) -> str:
    f = _Fields(values)
    text = f.text("text", max_len=max_len, min_len=min_len, multiline=True)
    f.check()
    return text


def sector_from_form(values: Mapping[str, str], sectors: list[str]) -> str | None:
    """The declared sector (optional); only one of the round's sectors."""
    sector = (values.get("sector") or "").strip() or None
    if sector is not None and sector not in sectors:
        raise FormErrors({"sector": "unknown_choice"})
    return sector


def rating_from_form(values: Mapping[str, str]) -> tuple[int | None, int | None]:
    f = _Fields(values)
    urgency = f.optional_int("urgency", low=1, high=5)
    impact = f.optional_int("impact", low=1, high=5)
    if urgency is None and impact is None and not f.errors:
        f.errors["urgency"] = "required"
    f.check()
    return urgency, impact


# --- follow-up: editing goals and actions, progress, check-ins, pilots, Delphi ----------------------


@dataclass(frozen=True, slots=True)
class GoalTracking:
    """How a goal is followed up: who owns and sponsors it, where its figures come from, how often
    its metric is checked."""

    owner: str | None
    sponsor: str | None
    data_source: str | None
    cadence: str


def goal_edit_from_form(values: Mapping[str, str], cadences: Sequence[str]) -> tuple[GoalSpec, GoalTracking]:
    f = _Fields(values)
    spec = _goal(f, values, None, after=None)
    owner = f.optional_text("owner", max_len=200)
    sponsor = f.optional_text("sponsor", max_len=200)
    source = f.optional_text("data_source", max_len=200)
    cadence = (values.get("checkin") or "").strip() or cadences[0]
    if cadence not in cadences:
        f.errors["checkin"] = "unknown_choice"
    f.check()
    return spec, GoalTracking(owner, sponsor, source, cadence)


@dataclass(frozen=True, slots=True)
class ActionEdit:
    title: str
    owner: str | None
    sponsor: str | None
    resources: str | None
    due: dt.date


def action_edit_from_form(values: Mapping[str, str], today: dt.date) -> ActionEdit:
    """A due date may be today (due today) but not in the past."""
    f = _Fields(values)
    title = f.text("title", max_len=200)
    owner = f.optional_text("owner", max_len=200)
    sponsor = f.optional_text("sponsor", max_len=200)
    resources = f.optional_long_text("resources", max_len=1000)
    due = f.date("due", after=today - dt.timedelta(days=1))
    f.check()
    assert due is not None
    return ActionEdit(title, owner, sponsor, resources, due)


@dataclass(frozen=True, slots=True)
class ProgressReport:
    status: str | None  # None: unchanged
    note: str | None
    due: dt.date | None  # None: unchanged


def progress_from_form(values: Mapping[str, str], today: dt.date, statuses: Sequence[str]) -> ProgressReport:
    f = _Fields(values)
    status = (values.get("status") or "").strip() or None
    if status is not None and status not in statuses:
        f.errors["status"] = "unknown_choice"
    note = f.optional_long_text("note", max_len=1000)
    due = f.date("due", required=False, after=today - dt.timedelta(days=1))
    if status is None and note is None and due is None and not f.errors:
        f.errors["note"] = "required"
    f.check()
    return ProgressReport(status, note, due)


def checkin_from_form(values: Mapping[str, str]) -> tuple[float, str | None]:
    f = _Fields(values)
    value = f.number("value")
    note = f.optional_long_text("note", max_len=1000)
    f.check()
    return value, note


def pilot_from_form(values: Mapping[str, str], decisions: Sequence[str]) -> tuple[str, str]:
    f = _Fields(values)
    decision = (values.get("decision") or "").strip()
    if decision not in decisions:
        f.errors["decision"] = "unknown_choice" if decision else "required"
    note = f.text("note", max_len=1000, multiline=True)
    f.check()
    return decision, note


def number_from_form(values: Mapping[str, str], name: str) -> float:
    """One number (a Delphi estimate, a fixed target)."""
    f = _Fields(values)
    value = f.number(name)
    f.check()
    return value


def reason_from_form(values: Mapping[str, str], max_len: int) -> str:
    """A rejection's reason: required, canonical text (it reaches the author privately)."""
    f = _Fields(values)
    reason = f.text("reason", max_len=max_len, min_len=1, multiline=True)
    f.check()
    return reason
