"""The plans that cut the link between who and what: release numbering and ballot relabelling."""

from __future__ import annotations

import itertools
import random
from collections import Counter

from bot.domain.anonymity import BallotCopy, relabel_ballots, release_plan


def test_release_numbers_every_idea_once_in_a_shuffled_order() -> None:
    texts = [f"idea {n}" for n in range(30)]
    plan = release_plan(texts, random.Random(3))
    assert [r.number for r in plan] == list(range(1, 31))
    assert sorted(r.text for r in plan) == sorted(texts)
    assert [r.text for r in plan] != texts  # submission order is not kept
    # Different draws give different orders: the order depends on the shuffle, not on the input.
    orders = {tuple(r.text for r in release_plan(texts, random.Random(seed))) for seed in range(5)}
    assert len(orders) == 5


def test_release_of_nothing_is_empty() -> None:
    assert release_plan([], random.Random(0)) == []


def test_relabelling_keeps_every_ballot_and_gives_each_voter_one_fresh_label() -> None:
    ballots = [
        BallotCopy(voter, idea, choice, None, None)
        for voter, idea, choice in [
            ("hmac-a", 1, "agree"),
            ("hmac-a", 2, "disagree"),
            ("hmac-b", 1, "pass"),
            ("hmac-c", 2, "agree"),
        ]
    ]
    labels = (f"label-{n}" for n in itertools.count())
    copies = relabel_ballots(ballots, random.Random(1), lambda: next(labels))
    assert Counter((b.idea, b.choice) for b in copies) == Counter((b.idea, b.choice) for b in ballots)
    assert not {b.voter for b in copies} & {b.voter for b in ballots}  # no HMAC survives
    by_label: dict[str, set[str]] = {}
    for old, new in zip(
        sorted(ballots, key=lambda b: (b.idea, b.choice)),
        sorted(copies, key=lambda b: (b.idea, b.choice)),
        strict=True,
    ):
        by_label.setdefault(new.voter, set()).add(old.voter)
    assert all(len(olds) == 1 for olds in by_label.values())  # one voter, one label
    assert len({b.voter for b in copies}) == 3


def test_relabelled_ballots_come_out_in_shuffled_order() -> None:
    ballots = [BallotCopy(f"v{n}", n, "agree", None, None) for n in range(40)]
    copies = relabel_ballots(ballots, random.Random(2), lambda: "x")
    assert [b.idea for b in copies] != list(range(40))
