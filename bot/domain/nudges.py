"""Nudging voters without naming anyone (threat A14), no I/O.

A convener may ask that everyone who has not finished voting be reminded. Who that is comes from
what the deck already derives (``bot/domain/deck.py``): a person's ballots, found by their pseudonym
under the round key; nothing new is stored, and no row links the roster to a ballot. Everyone
concerned gets the same private reminder; the convener learns only how many were reminded, and only
when that number is at least k (the round's ``sector_min_voters``), so a nudge never tells who has
or has not voted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def unfinished(people: Iterable[str], voted: Mapping[str, int], released: int) -> list[str]:
    """Of ``people`` (their pseudonyms), those who have not voted on every one of the ``released``
    ideas (``voted``: ideas each pseudonym has voted on; absent means none). With nothing released
    there is nothing to vote on, so nobody is behind."""
    if released <= 0:
        return []
    return [p for p in people if voted.get(p, 0) < released]


def shown_count(count: int, k: int) -> int | None:
    """The count a convener may see: itself when at least ``k``, else None ("fewer than k")."""
    return count if count >= max(1, k) else None
