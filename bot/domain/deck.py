"""The private voting deck: which idea a person sees next, and what their card carries (no I/O).

A person votes on one idea at a time, on a card only they see. Where they are is kept nowhere: it is
derived from what the database already holds (their ballots, found by the round key's pseudonym)
and from what the clicked card carries in its buttons' ids (the idea on the card, and the few ideas
shown before it, for Back). So a restart loses nothing, and no new row or timestamp links a person
to their votes.

Order: each person walks the round's ideas in a permutation of their own, drawn from their
pseudonym (a hash of it and the idea's number). Among the next few ideas after the card they are on
that they have not voted on, the one with the fewest votes comes first, so that every idea gathers
votes (as Polis does); ties keep the person's own order. Skipping moves along the permutation, so
every idea is reached, and skipped ones come round again at the end.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from bot.domain.errors import DomainError

WINDOW = 8  # unvoted ideas looked at after the current one; the least-voted of them comes next
TRAIL_MAX = 8  # ideas a card remembers for Back
TRAIL_CHARS = 40  # a component id part's limit (bot.ids)
NO_TRAIL = "-"

# Button codes: a vote on an idea not voted on yet, or a change of an earlier vote (from Back).
CHOICES = {"a": "agree", "d": "disagree", "p": "pass"}
CHANGES = {"ca": "agree", "cd": "disagree", "cp": "pass"}
CODES = {v: k for k, v in CHOICES.items()}
MOVES = {"s": "skip", "b": "back", "n": "next"}


def personal_order(seed: str, numbers: Collection[int]) -> list[int]:
    """The round's ideas in this person's own order (``seed``: their pseudonym in the round)."""
    return list(_order(seed, tuple(sorted(numbers))))


@functools.lru_cache(maxsize=4096)
def _order(seed: str, numbers: tuple[int, ...]) -> tuple[int, ...]:
    # Derivable again at any time, so caching it keeps nothing that is not already derivable.
    return tuple(sorted(numbers, key=lambda n: hashlib.sha256(f"{seed}:{n}".encode()).digest()[:8]))


def window(
    order: Sequence[int], voted: Collection[int], after: int | None, *, skip: bool = False
) -> list[int]:
    """The ideas the next card is chosen from: the next few not voted on after ``after`` (None:
    from the start of ``order``); after a skip only the very next one, so that skipping reaches
    every idea in turn. ``after`` itself comes back only when it is the last one left."""
    start = order.index(after) + 1 if after is not None and after in order else 0
    size = 1 if skip else WINDOW
    found = [n for n in (*order[start:], *order[:start]) if n not in voted and n != after][:size]
    if not found and after is not None and after in order and after not in voted:
        return [after]
    return found


def next_idea(
    order: Sequence[int],
    voted: Collection[int],
    counts: Mapping[int, int],
    after: int | None,
    *,
    skip: bool = False,
) -> int | None:
    """The next idea to show (the least-voted of the window, the earliest on a tie), or None when
    every idea is voted on."""
    candidates = window(order, voted, after, skip=skip)
    if not candidates:
        return None
    rank = {n: i for i, n in enumerate(candidates)}
    return min(candidates, key=lambda n: (counts.get(n, 0), rank[n]))


def derived_trail(order: Sequence[int], voted: Collection[int], exclude: int | None) -> tuple[int, ...]:
    """Back's history when a card carries none (a deck opened afresh): the person's votes, the
    latest in their own order first."""
    return tuple(n for n in reversed(order) if n in voted and n != exclude)[:TRAIL_MAX]


def push(trail: Sequence[int], number: int) -> tuple[int, ...]:
    """``number`` becomes the most recent idea of the trail (once)."""
    return (number, *(n for n in trail if n != number))[:TRAIL_MAX]


def encode_trail(trail: Sequence[int]) -> str:
    """``12.7.3`` (most recent first), as long as fits in one id part; ``-`` when empty."""
    out = ""
    for n in trail[:TRAIL_MAX]:
        candidate = f"{out}.{n}" if out else str(n)
        if len(candidate) > TRAIL_CHARS:
            break
        out = candidate
    return out or NO_TRAIL


def decode_trail(value: str) -> tuple[int, ...]:
    """The trail a card carries; anything else is a tampered id."""
    if value == NO_TRAIL:
        return ()
    pieces = value.split(".")
    if len(pieces) > TRAIL_MAX or not all(p.isdigit() and p.isascii() and len(p) <= 9 for p in pieces):
        raise DomainError("unknown_button")
    return tuple(int(p) for p in pieces)


@dataclass(frozen=True, slots=True)
class DeckPlace:
    """Where a vote cast from the deck came from: the ideas shown before it (Back's trail), and
    whether the card offered to change an earlier vote (reached with Back) or to cast a first one."""

    trail: tuple[int, ...] = ()
    change: bool = False


@dataclass(frozen=True, slots=True)
class CardPlan:
    """What a person's card shows: ``idea`` (None: they are done), their earlier vote on it (a card
    reached with Back), how far they are, and the trail its Back button carries."""

    idea: int | None
    current: str | None
    voted: int
    total: int
    trail: tuple[int, ...]


def plan_card(
    seed: str,
    released: Collection[int],
    votes: Mapping[int, str],
    counts: Mapping[int, int],
    *,
    after: int | None = None,
    skip: bool = False,
    show: int | None = None,
    trail: Sequence[int] = (),
) -> CardPlan:
    """The card to show: ``show`` (Back) if given, else the next idea after ``after`` (``skip``:
    the very next one). ``votes``: this person's vote per idea; ``counts``: votes per idea (only
    those of the ``window`` matter)."""
    order = personal_order(seed, released)
    if show is not None and show in released:
        idea: int | None = show
    else:
        idea = next_idea(order, votes, counts, after, skip=skip)
    kept = tuple(n for n in trail if n in released and n != idea)
    return CardPlan(
        idea=idea,
        current=votes.get(idea) if idea is not None else None,
        voted=len(votes),
        total=len(released),
        trail=kept or derived_trail(order, votes, idea),
    )
