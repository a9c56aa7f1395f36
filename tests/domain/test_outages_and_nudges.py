"""Rules of the outbox watch and of nudges (no database): when the watch looks, whom it tells, who
is behind in voting and what count a convener may see."""

from __future__ import annotations

import datetime as dt

from bot.domain import nudges, outages

NOW = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)


def test_the_watch_looks_again_within_a_minute_and_says_whole_minutes() -> None:
    assert outages.next_watch(NOW) - NOW == dt.timedelta(minutes=1)
    assert outages.minutes_failing(NOW - dt.timedelta(minutes=10, seconds=59), NOW) == 10
    assert outages.minutes_failing(NOW + dt.timedelta(seconds=5), NOW) == 0


def test_each_convener_is_told_once_whatever_guild_they_linked_from() -> None:
    maya = "slack\x1fT1\x1fU-maya"
    ade_g1, ade_g2 = "discord\x1fG1\x1f42", "discord\x1fG2\x1f42"
    assert outages.recipients([maya, ade_g1, ade_g2, maya, ""]) == [maya, ade_g1]


def test_only_people_with_ideas_left_are_behind() -> None:
    voted = {"p1": 4, "p2": 2, "p3": 0}
    assert nudges.unfinished(["p1", "p2", "p3", "p4"], voted, 4) == ["p2", "p3", "p4"]
    assert nudges.unfinished(["p1", "p2"], voted, 0) == [], "nothing released: nobody is behind"


def test_a_convener_sees_a_count_only_from_k() -> None:
    assert nudges.shown_count(5, 5) == 5
    assert nudges.shown_count(4, 5) is None
    assert nudges.shown_count(0, 5) is None
    assert nudges.shown_count(1, 0) == 1  # k is at least one
