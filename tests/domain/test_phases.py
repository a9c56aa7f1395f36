"""The phase table: every allowed and every refused transition."""

from __future__ import annotations

import itertools

import pytest

from bot.domain.phases import NEXT, TRANSITIONS, Phase, can_transition

ALLOWED = {
    (Phase.CONTRIBUTE, Phase.VOTE),
    (Phase.VOTE, Phase.GOALS),
    (Phase.GOALS, Phase.ACTIONS),
    (Phase.ACTIONS, Phase.CLOSED),
    *((p, Phase.CANCELLED) for p in (Phase.CONTRIBUTE, Phase.VOTE, Phase.GOALS, Phase.ACTIONS)),
}


@pytest.mark.parametrize(("src", "dst"), list(itertools.product(Phase, Phase)))
def test_the_table_allows_exactly_the_documented_transitions(src: Phase, dst: Phase) -> None:
    assert can_transition(src, dst) == ((src, dst) in ALLOWED)


def test_next_follows_the_table() -> None:
    assert all(can_transition(src, dst) for src, dst in NEXT.items())
    assert not TRANSITIONS[Phase.CLOSED]
    assert not TRANSITIONS[Phase.CANCELLED]
