"""Retention rules: when a roster, an owner's reference, a request id and an idle round expire."""

from __future__ import annotations

import datetime as dt

from bot.domain import retention as r
from bot.refs import Platform, UserRef

NOW = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)
TODAY = NOW.date()


def test_a_roster_expires_roster_days_after_its_round_ended() -> None:
    ended = NOW - dt.timedelta(days=30)
    assert r.roster_expired("closed", ended, NOW, 30)
    assert r.roster_expired("cancelled", ended, NOW, 30)
    assert not r.roster_expired("closed", ended + dt.timedelta(seconds=1), NOW, 30)
    # 0 days: as soon as the round has ended; never while it runs, however old.
    assert r.roster_expired("closed", NOW, NOW, 0)
    for phase in ("contribute", "vote", "goals", "actions"):
        assert not r.roster_expired(phase, NOW - dt.timedelta(days=999), NOW, 0)


def test_an_owner_keeps_their_reference_while_the_action_is_followed_up() -> None:
    due = TODAY + dt.timedelta(days=10)
    assert not r.owner_ref_expired("open", due, TODAY, 0)
    assert r.owner_ref_expired("done", due, TODAY, 30)
    assert r.owner_ref_expired("cancelled", due, TODAY, 30)
    assert not r.owner_ref_expired("open", TODAY - dt.timedelta(days=30), TODAY, 30)
    assert r.owner_ref_expired("open", TODAY - dt.timedelta(days=31), TODAY, 30)


def test_request_ids_are_kept_one_day_for_retries() -> None:
    assert r.inbox_cutoff(TODAY) == TODAY - dt.timedelta(days=1)


def test_a_round_is_idle_only_when_open_with_no_deadline_for_longer_than_the_limit() -> None:
    old = NOW - dt.timedelta(days=61)
    assert r.is_idle("contribute", old, NOW, 60, deadline_pending=False)
    assert not r.is_idle("contribute", old, NOW, 60, deadline_pending=True)
    assert not r.is_idle("contribute", NOW - dt.timedelta(days=59), NOW, 60, deadline_pending=False)
    assert not r.is_idle("closed", old, NOW, 60, deadline_pending=False)


def test_a_stored_person_reference_reads_back_as_platform_and_user() -> None:
    ref = UserRef(Platform.SLACK, "T1", "U0ALICE").key()
    assert r.user_of(ref) == ("slack", "U0ALICE")
    assert r.user_of("nonsense") is None


def test_a_purge_that_only_counted_rounds_deleted_nothing() -> None:
    assert not r.Purged(rounds=2).deleted_anything()
    assert r.Purged(rounds=2, roster=1).deleted_anything()
    assert r.Purged(inbox=3).deleted_anything()
    assert r.Erased(roster=1, messages=2).total() == 3


def test_an_ended_round_is_followed_up_while_a_goal_or_an_open_action_is_recent() -> None:
    today = dt.date(2026, 6, 1)
    assert r.still_followed([dt.date(2026, 9, 1)], [], today, 30)  # a goal still running
    assert r.still_followed([], [dt.date(2026, 5, 15)], today, 30)  # an action 17 days overdue
    assert not r.still_followed([dt.date(2026, 4, 1)], [dt.date(2026, 4, 30)], today, 30)
    assert not r.still_followed([], [], today, 30)  # nothing to follow: forget at once


def test_a_goal_owner_is_kept_while_followed_and_until_roster_days_past_the_deadline() -> None:
    deadline = dt.date(2026, 6, 1)
    assert not r.goal_owner_ref_expired(deadline, True, dt.date(2026, 6, 30), 30)
    assert r.goal_owner_ref_expired(deadline, True, dt.date(2026, 7, 2), 30)
    assert r.goal_owner_ref_expired(deadline, False, dt.date(2026, 5, 1), 30)
