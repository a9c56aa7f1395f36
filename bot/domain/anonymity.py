"""Plans that cut the link between who and what (no I/O; the service writes the rows).

* Release: pending ideas are shuffled and numbered "Idea 1..n"; the service rewrites them with fresh
  random ids, so neither ids nor storage order tell who wrote what, or when.
* Ballot relabelling: HMAC voter keys become random per-voter labels, in shuffled order, so that even
  the round key (recovered from a backup) links no one to a ballot afterwards.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Released:
    number: int
    text: str


def release_plan(texts: Sequence[str], rng: random.Random) -> list[Released]:
    shuffled = list(texts)
    rng.shuffle(shuffled)
    return [Released(number, text) for number, text in enumerate(shuffled, start=1)]


@dataclass(frozen=True, slots=True)
class BallotCopy:
    voter: str
    idea: int
    choice: str | None
    urgency: int | None
    impact: int | None


def relabel_ballots(
    ballots: Sequence[BallotCopy], rng: random.Random, new_label: Callable[[], str]
) -> list[BallotCopy]:
    """The same ballots under fresh per-voter labels (one voter keeps one label), shuffled."""
    labels: dict[str, str] = {}
    copies = []
    for b in ballots:
        if b.voter not in labels:
            labels[b.voter] = new_label()
        copies.append(BallotCopy(labels[b.voter], b.idea, b.choice, b.urgency, b.impact))
    rng.shuffle(copies)
    return copies
