"""The round's phases and the only transitions allowed between them (data, not scattered ifs)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final


class Phase(StrEnum):
    CONTRIBUTE = "contribute"
    VOTE = "vote"
    GOALS = "goals"
    ACTIONS = "actions"
    CLOSED = "closed"
    CANCELLED = "cancelled"


OPEN_PHASES: Final = (Phase.CONTRIBUTE, Phase.VOTE, Phase.GOALS, Phase.ACTIONS)

TRANSITIONS: Final[Mapping[Phase, frozenset[Phase]]] = {
    Phase.CONTRIBUTE: frozenset({Phase.VOTE, Phase.CANCELLED}),
    Phase.VOTE: frozenset({Phase.GOALS, Phase.CANCELLED}),
    Phase.GOALS: frozenset({Phase.ACTIONS, Phase.CANCELLED}),
    Phase.ACTIONS: frozenset({Phase.CLOSED, Phase.CANCELLED}),
    Phase.CLOSED: frozenset(),
    Phase.CANCELLED: frozenset(),
}

# "next" moves along this path; the order of the mapping is the order of the round.
NEXT: Final[Mapping[Phase, Phase]] = {
    Phase.CONTRIBUTE: Phase.VOTE,
    Phase.VOTE: Phase.GOALS,
    Phase.GOALS: Phase.ACTIONS,
    Phase.ACTIONS: Phase.CLOSED,
}


def can_transition(src: Phase, dst: Phase) -> bool:
    return dst in TRANSITIONS[src]
