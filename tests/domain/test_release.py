"""Releasing ideas: duplicates merged, previews for the compact list, continuous batches."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from bot.domain.release import (
    comparison_key,
    continuous_allowed,
    distinct_new,
    next_batch_at,
    preview,
    release_batch,
)

NOW = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Open every school playground", "open every  school playground!"),
        ("Plant 1,000 trees.", "plant 1000 trees"),
        ("Fix the lights — now", "Fix the lights now"),
        ("Café", "CAFE\u0301"),  # composed and decomposed accents
    ],
)
def test_identical_ideas_share_a_key(a: str, b: str) -> None:
    assert comparison_key(a) == comparison_key(b)


@pytest.mark.parametrize(("a", "b"), [("Plant trees", "Plant bees"), ("1000 trees", "100 trees")])
def test_different_ideas_keep_different_keys(a: str, b: str) -> None:
    assert comparison_key(a) != comparison_key(b)


def test_duplicates_are_merged_at_release_and_the_rest_numbered_in_order() -> None:
    texts = ["Safe routes to school", "Warm spaces", "safe routes to school!", "Bins", "Warm spaces"]
    batch = release_batch(texts, random.Random(1))
    assert batch.merged
    assert [i.number for i in batch.ideas] == [1, 2, 3]
    assert sorted(comparison_key(i.text) for i in batch.ideas) == sorted({comparison_key(t) for t in texts})


def test_a_later_batch_continues_the_numbers_and_merges_with_ideas_already_shown() -> None:
    batch = release_batch(["Bins", "Benches", "New lamps"], random.Random(2), start=8, shown=["bins"])
    assert batch.merged
    assert [i.number for i in batch.ideas] == [8, 9]
    assert {i.text for i in batch.ideas} == {"Benches", "New lamps"}
    assert not release_batch(["A", "B"], random.Random(0)).merged


def test_distinct_new_counts_different_ideas_only() -> None:
    assert distinct_new(["a", "A.", "b", "c"], shown=["c"]) == 2


def test_previews_are_one_short_line() -> None:
    assert preview("Short idea") == "Short idea"
    long = "Plant one thousand street trees in the three hottest neighbourhoods before next summer"
    p = preview(long)
    assert len(p) <= 64
    assert p.endswith("…")
    assert long.startswith(p[:-1])
    assert "\n" not in preview("two\nlines")


def test_a_batch_waits_for_k_ideas_the_interval_and_a_random_delay() -> None:
    kw = {
        "batch_min": 5,
        "min_interval": dt.timedelta(minutes=10),
        "jitter": dt.timedelta(minutes=5),
    }
    assert next_batch_at(NOW, waiting=4, last_release=None, rng=random.Random(0), **kw) is None
    due = next_batch_at(NOW, waiting=5, last_release=NOW, rng=random.Random(0), **kw)
    assert due is not None
    assert NOW + dt.timedelta(minutes=10) <= due <= NOW + dt.timedelta(minutes=15)
    later = NOW + dt.timedelta(hours=1)
    due = next_batch_at(later, waiting=9, last_release=NOW, rng=random.Random(0), **kw)
    assert due is not None
    assert later <= due <= later + dt.timedelta(minutes=5)
    draws = {next_batch_at(later, waiting=9, last_release=NOW, rng=random.Random(s), **kw) for s in range(5)}
    assert len(draws) == 5  # jitter: the time does not follow from the last arrival


def test_continuous_mode_needs_a_crowd() -> None:
    assert not continuous_allowed(7, 8)
    assert continuous_allowed(8, 8)
