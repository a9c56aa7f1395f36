"""The voting deck's order and its cards: who sees what next, derived from ballots alone."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain import deck
from bot.domain.errors import DomainError

IDEAS = list(range(1, 43))


def walk(seed: str, released: list[int], counts: Counter[int], *, skip_every: int = 0) -> list[int]:
    """A person who votes on every card (skipping every n-th), until the deck says they are done."""
    votes: dict[int, str] = {}
    seen: list[int] = []
    after: int | None = None
    skip = False
    for step in range(10 * len(released)):
        card = deck.plan_card(seed, released, votes, counts, after=after, skip=skip)
        if card.idea is None:
            return seen
        seen.append(card.idea)
        skip = bool(skip_every and step % skip_every == skip_every - 1)
        if skip:
            after = card.idea
            continue
        votes[card.idea] = "agree"
        counts[card.idea] += 1
        after = card.idea
    raise AssertionError("the deck never said done")


def test_a_person_meets_every_idea_and_is_then_done() -> None:
    seen = walk("voter-a", IDEAS, Counter())
    assert sorted(seen) == IDEAS  # each once, none missing


def test_skipped_ideas_come_round_again_and_every_idea_is_reached() -> None:
    seen = walk("voter-b", IDEAS, Counter(), skip_every=3)
    assert set(seen) == set(IDEAS)
    assert len(seen) > len(IDEAS)  # the skipped ones were shown again later


def test_each_person_has_an_order_of_their_own() -> None:
    firsts = {deck.plan_card(f"voter-{i}", IDEAS, {}, Counter()).idea for i in range(30)}
    assert len(firsts) > 10  # not everyone starts on the same idea
    assert deck.personal_order("x", IDEAS) == deck.personal_order("x", list(reversed(IDEAS)))


def test_ideas_with_few_votes_come_first() -> None:
    counts = Counter(dict.fromkeys(IDEAS, 10))
    counts[17] = 0
    for i in range(50):  # whoever has it among the first few of their order is shown it first
        if 17 in deck.personal_order(f"p{i}", IDEAS)[: deck.WINDOW]:
            assert deck.plan_card(f"p{i}", IDEAS, {}, counts).idea == 17
    # Over many people, the least-voted idea is shown first far more often than its share.
    firsts = Counter(deck.plan_card(f"p{i}", IDEAS, {}, counts).idea for i in range(400))
    assert firsts[17] > 400 * deck.WINDOW / len(IDEAS) * 0.6


def test_many_voters_spread_their_votes_evenly() -> None:
    counts: Counter[int] = Counter()
    for i in range(20):  # twenty people who each vote on the first ten cards they are shown
        votes: dict[int, str] = {}
        after = None
        for _ in range(10):
            card = deck.plan_card(f"v{i}", IDEAS, votes, counts, after=after)
            assert card.idea is not None
            votes[card.idea] = "pass"
            counts[card.idea] += 1
            after = card.idea
    assert max(counts.values()) - min(counts[n] for n in IDEAS) <= 4


def test_back_shows_the_trail_and_the_earlier_vote() -> None:
    votes = {5: "agree", 9: "disagree"}
    card = deck.plan_card("p", IDEAS, votes, Counter(), show=9, trail=(9, 5))
    assert card.idea == 9
    assert card.current == "disagree"
    assert card.trail == (5,)
    assert card.voted == 2
    assert card.total == len(IDEAS)


def test_a_fresh_deck_can_still_go_back_to_earlier_votes() -> None:
    votes = {5: "agree", 9: "disagree", 30: "pass"}
    card = deck.plan_card("p", IDEAS, votes, Counter())
    assert set(card.trail) == {5, 9, 30}
    done = deck.plan_card("p", [5, 9], {5: "agree", 9: "pass"}, Counter())
    assert done.idea is None
    assert set(done.trail) == {5, 9}


def test_skipping_reaches_every_unvoted_idea_whatever_the_counts() -> None:
    counts = Counter({n: (50 if n % 2 else 0) for n in IDEAS})  # odd ideas are much voted on
    votes: dict[int, str] = {}
    card = deck.plan_card("p", IDEAS, votes, counts)
    met = set()
    for _ in range(len(IDEAS)):
        assert card.idea is not None
        met.add(card.idea)
        card = deck.plan_card("p", IDEAS, votes, counts, after=card.idea, skip=True)
    assert met == set(IDEAS)


def test_the_last_idea_left_comes_back_when_skipped() -> None:
    card = deck.plan_card("p", [1, 2], {1: "agree"}, Counter(), after=2, skip=True)
    assert card.idea == 2


@given(st.lists(st.integers(1, 99_999), max_size=20))
def test_trails_round_trip_within_one_id_part(numbers: list[int]) -> None:
    encoded = deck.encode_trail(numbers)
    assert 0 < len(encoded) <= deck.TRAIL_CHARS
    decoded = deck.decode_trail(encoded)
    assert list(decoded) == numbers[: len(decoded)]


@pytest.mark.parametrize("value", ["", "1..2", "x", "1.2.3.4.5.6.7.8.9", "１", "12345678901"])
def test_a_tampered_trail_is_refused(value: str) -> None:
    with pytest.raises(DomainError):
        deck.decode_trail(value)


def test_push_keeps_the_newest_first_and_no_repeats() -> None:
    assert deck.push((3, 2, 1), 2) == (2, 3, 1)
    assert len(deck.push(tuple(range(20)), 99)) == deck.TRAIL_MAX


def test_orders_do_not_follow_the_numbers() -> None:
    rng = random.Random(5)
    seed = f"{rng.random()}"
    assert deck.personal_order(seed, IDEAS) != IDEAS
