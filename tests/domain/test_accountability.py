"""The accountability loop's rules, without a database: who may report on an action, when each
reminder falls due (in the round's time zone), how far a metric is from its target, the Delphi
spread, and the follow-up forms."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain import accountability as acc
from bot.domain import validation
from bot.domain.errors import DomainError, FormErrors

KIM_IN_GUILD = "discord\x1fG-1\x1f42"
KIM_IN_DM = "discord\x1f@me\x1f42"
RAJ = "slack\x1fT-1\x1fU-raj"


def test_a_discord_person_is_the_same_in_a_guild_and_a_dm_a_slack_one_only_in_their_workspace() -> None:
    assert acc.same_person(KIM_IN_GUILD, KIM_IN_DM)
    assert not acc.same_person(KIM_IN_GUILD, "discord\x1fG-1\x1f43")
    assert acc.same_person(RAJ, RAJ)
    assert not acc.same_person(RAJ, "slack\x1fT-2\x1fU-raj")  # another workspace's user
    assert not acc.same_person(RAJ, None)


def test_only_the_owner_or_a_convener_may_report_on_an_action() -> None:
    acc.check_may_update(KIM_IN_DM, KIM_IN_GUILD, convener=False)
    acc.check_may_update(RAJ, KIM_IN_GUILD, convener=True)
    with pytest.raises(DomainError) as err:
        acc.check_may_update(RAJ, KIM_IN_GUILD, convener=False)
    assert err.value.code == "not_action_owner"
    with pytest.raises(DomainError):  # a named organisation has no platform identity to match
        acc.check_may_update(RAJ, None, convener=False)


def test_conveners_in_a_dm_are_the_recorded_ones_or_config_named_on_the_rounds_platforms() -> None:
    assert acc.is_round_convener(KIM_IN_DM, False, [KIM_IN_GUILD], {("slack", "T-1")})
    assert acc.is_round_convener(RAJ, True, [], {("slack", "T-1"), ("discord", "G-1")})
    assert not acc.is_round_convener(RAJ, True, [], {("discord", "G-1")})
    assert not acc.is_round_convener(RAJ, False, [KIM_IN_GUILD], {("slack", "T-1")})
    # A convener named for one Slack workspace is nobody in another's round (ids are per workspace).
    assert not acc.is_round_convener(RAJ, True, [], {("slack", "T-2")})
    assert acc.is_round_convener(KIM_IN_DM, True, [], {("discord", "G-1")})
    # In a guild, the flag comes from that guild's convener roles: it counts in that guild's rounds only.
    assert acc.is_round_convener(KIM_IN_GUILD, True, [], {("discord", "G-1")})
    assert not acc.is_round_convener("discord\x1fG-2\x1f42", True, [], {("discord", "G-1")})


def test_only_a_convener_may_cancel_and_a_made_up_status_is_refused() -> None:
    acc.check_status("done", convener=False)
    acc.check_status("cancelled", convener=True)
    with pytest.raises(DomainError) as err:
        acc.check_status("cancelled", convener=False)
    assert err.value.code == "not_convener"
    with pytest.raises(DomainError):
        acc.check_status("finished", convener=True)


def test_renaming_an_owner_drops_the_person_who_had_it() -> None:
    assert acc.owner_after_edit("Kim", KIM_IN_GUILD, "Kim") == KIM_IN_GUILD
    assert acc.owner_after_edit("Kim", KIM_IN_GUILD, "Parks team") is None


def test_reminders_go_out_at_the_local_hour_of_the_rounds_time_zone() -> None:
    winter = acc.at_local(dt.date(2027, 1, 15), 9, "America/New_York")
    summer = acc.at_local(dt.date(2027, 7, 15), 9, "America/New_York")
    assert winter == dt.datetime(2027, 1, 15, 14, 0, tzinfo=dt.UTC)
    assert summer == dt.datetime(2027, 7, 15, 13, 0, tzinfo=dt.UTC)
    assert acc.at_local(dt.date(2027, 1, 15), 9, "Asia/Tokyo") == dt.datetime(
        2027, 1, 15, 0, 0, tzinfo=dt.UTC
    )
    # 23:30 UTC on the 14th is already the 15th in Tokyo
    assert acc.local_day(dt.datetime(2027, 1, 14, 23, 30, tzinfo=dt.UTC), "Asia/Tokyo") == dt.date(
        2027, 1, 15
    )


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../../etc/passwd", "/etc/localtime", "x" * 80])
def test_an_unknown_time_zone_is_refused_clearly(name: str) -> None:
    with pytest.raises(DomainError) as err:
        acc.zone(name)
    assert err.value.code == "unknown_timezone"


NOW = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)


def plan(due: dt.date, now: dt.datetime = NOW, **kw: object) -> list[tuple[str, dt.datetime]]:
    options: dict[str, object] = {"tz": "UTC", "hour": 9, "days_before": 3, **kw}
    return [(r.kind, r.at) for r in acc.reminder_plan(due, now, **options)]  # type: ignore[arg-type]


def at(day: int, month: int = 12, hour: int = 9) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, tzinfo=dt.UTC)


def test_an_action_due_later_gets_due_soon_due_and_the_escalation_the_day_after() -> None:
    assert plan(dt.date(2026, 12, 20)) == [("due_soon", at(17)), ("due", at(20)), ("overdue", at(21))]
    assert plan(dt.date(2026, 12, 20), days_before=0) == [("due", at(20)), ("overdue", at(21))]


def test_a_reminder_whose_time_passed_fires_now_only_while_it_is_still_true() -> None:
    # Due in two days: "due soon" (three days ahead) passed but still true, so it goes now.
    assert plan(dt.date(2026, 12, 3))[0] == ("due_soon", NOW)
    # Due today, after 09:00: "due soon" is no longer true; "due" goes now.
    assert plan(dt.date(2026, 12, 1)) == [("due", NOW), ("overdue", at(2))]
    # Overdue already: only the escalation, now.
    assert plan(dt.date(2026, 11, 20)) == [("overdue", NOW)]


def test_a_reminder_already_sent_is_never_planned_again() -> None:
    assert plan(dt.date(2026, 12, 20), sent={"due_soon", "due"}) == [("overdue", at(21))]
    assert plan(dt.date(2026, 11, 20), sent={"overdue"}) == []


def test_months_keep_their_day_or_end_of_month() -> None:
    assert acc.add_months(dt.date(2027, 1, 31), 1) == dt.date(2027, 2, 28)
    assert acc.add_months(dt.date(2026, 11, 26), 3) == dt.date(2027, 2, 26)
    assert acc.cadence_day(dt.date(2026, 11, 26), "fortnightly", 2) == dt.date(2026, 12, 24)


def test_check_ins_follow_the_cadence_until_the_deadline() -> None:
    start = dt.date(2026, 11, 26)
    deadline = dt.date(2027, 2, 28)
    assert acc.next_checkin(start, "monthly", start, deadline) == dt.date(2026, 12, 26)
    assert acc.next_checkin(start, "monthly", dt.date(2026, 12, 26), deadline) == dt.date(2027, 1, 26)
    assert acc.next_checkin(start, "monthly", dt.date(2027, 2, 26), deadline) is None
    assert acc.next_checkin(start, "none", start, deadline) is None
    assert acc.next_checkin(start, None, start, deadline) is None


def test_the_progress_post_keeps_its_weekly_rhythm_after_downtime() -> None:
    start = dt.date(2026, 11, 26)
    assert acc.next_every(start, 7, start) == dt.date(2026, 12, 3)
    assert acc.next_every(start, 7, dt.date(2026, 12, 5)) == dt.date(2026, 12, 10)


def test_progress_runs_from_baseline_to_target_in_either_direction() -> None:
    up = acc.progress(4, 32, 11)
    assert up is not None
    assert (up.percent, up.filled, up.met) == (25, 3, False)
    down = acc.progress(120, 60, 90)  # fewer accidents is progress
    assert down is not None
    assert (down.percent, down.met) == (50, False)
    beyond = acc.progress(55, 100, 104)
    assert beyond is not None
    assert (beyond.percent, beyond.filled, beyond.met) == (100, 10, True)
    away = acc.progress(55, 100, 40)
    assert away is not None
    assert (away.percent, away.met) == (0, False)
    assert acc.progress(55, 100, None) is None


def test_follow_up_is_over_when_nothing_is_left_to_follow() -> None:
    today = dt.date(2027, 3, 1)
    assert acc.follow_up_over(today, 0, [dt.date(2027, 2, 28)], [])
    assert not acc.follow_up_over(today, 1, [dt.date(2027, 2, 28)], [])
    assert not acc.follow_up_over(today, 0, [dt.date(2027, 9, 1)], [])
    assert not acc.follow_up_over(today, 0, [dt.date(2027, 2, 28)], [dt.date(2027, 2, 1)])


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=40))
def test_the_delphi_spread_is_the_median_and_quartiles_numpy_gives(values: list[float]) -> None:
    s = acc.spread(values)
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    assert s.n == len(values)
    assert s.median == pytest.approx(median, abs=1e-6)
    assert s.q1 == pytest.approx(q1, abs=1e-6)
    assert s.q3 == pytest.approx(q3, abs=1e-6)
    assert s.q1 <= s.median <= s.q3


def test_a_spread_is_published_in_batches_of_k_only() -> None:
    assert [n for n in range(1, 13) if acc.publishes(n, 5)] == [5, 10]
    assert not acc.publishes(0, 5)


# --- forms ----------------------------------------------------------------------------------------

TODAY = dt.date(2026, 12, 1)


@pytest.mark.parametrize("value", ["twelve", "", "12 schools", "1e400", "nan"])
def test_a_check_in_that_is_not_a_number_names_the_field(value: str) -> None:
    with pytest.raises(FormErrors) as err:
        validation.checkin_from_form({"value": value})
    assert err.value.fields == {"value": "not_a_number"}


def test_a_check_in_takes_the_number_and_an_optional_note() -> None:
    assert validation.checkin_from_form({"value": " 1,250.5 ", "note": ""}) == (1250.5, None)


def test_progress_refuses_a_due_date_in_the_past_and_an_empty_report() -> None:
    statuses = (*acc.STATUSES, acc.CANCELLED)
    with pytest.raises(FormErrors) as err:
        validation.progress_from_form({"status": "", "due": "2026-11-30"}, TODAY, statuses)
    assert err.value.fields == {"due": "date_in_past"}
    with pytest.raises(FormErrors) as err:
        validation.progress_from_form({"status": "", "note": "  ", "due": ""}, TODAY, statuses)
    assert err.value.fields == {"note": "required"}
    with pytest.raises(FormErrors):
        validation.progress_from_form({"status": "finished"}, TODAY, statuses)
    report = validation.progress_from_form({"status": "at_risk", "due": "2026-12-01"}, TODAY, statuses)
    assert (report.status, report.note, report.due) == ("at_risk", None, TODAY)


def test_an_action_edit_keeps_the_due_date_out_of_the_past() -> None:
    values = {
        "title": "Survey lamps",
        "owner": "Parks team",
        "sponsor": "",
        "resources": "2 staff",
        "due": "",
    }
    with pytest.raises(FormErrors) as err:
        validation.action_edit_from_form({**values, "due": "2026-11-01"}, TODAY)
    assert err.value.fields == {"due": "date_in_past"}
    edit = validation.action_edit_from_form({**values, "due": "2027-01-10"}, TODAY)
    assert (edit.owner, edit.sponsor, edit.resources) == ("Parks team", None, "2 staff")


def test_a_goal_edit_reads_tracking_fields_and_a_known_cadence() -> None:
    values = {
        "title": "Light the canal path",
        "outcome": "Safe after dark",
        "metric": "Working lights",
        "unit": "%",
        "baseline": "55",
        "target": "100",
        "deadline": "2026-01-01",  # in the past: the handler refuses only a changed date
        "pilot": "no",
        "review_date": "",
        "owner": "Parks team",
        "sponsor": "",
        "data_source": "Monthly lamp survey",
        "checkin": "monthly",
    }
    spec, tracking = validation.goal_edit_from_form(values, acc.CADENCES)
    assert spec.deadline == dt.date(2026, 1, 1)
    assert (tracking.owner, tracking.sponsor, tracking.data_source, tracking.cadence) == (
        "Parks team",
        None,
        "Monthly lamp survey",
        "monthly",
    )
    with pytest.raises(FormErrors) as err:
        validation.goal_edit_from_form({**values, "checkin": "hourly", "baseline": "x"}, acc.CADENCES)
    assert err.value.fields == {"checkin": "unknown_choice", "baseline": "not_a_number"}


def test_a_pilot_decision_needs_one_of_the_three_and_a_note() -> None:
    with pytest.raises(FormErrors) as err:
        validation.pilot_from_form({"decision": "", "note": ""}, acc.PILOT_DECISIONS)
    assert err.value.fields == {"decision": "required", "note": "required"}
    assert validation.pilot_from_form({"decision": "scale", "note": "Works"}, acc.PILOT_DECISIONS) == (
        "scale",
        "Works",
    )
