"""Releasing ideas: identical ones merged, and (in continuous rounds) when the next batch may go out.

No I/O here; ``participation`` writes the rows and posts.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from bot.domain.anonymity import Released, release_plan
from bot.sanitize import comparison_key  # one meaning of "the same idea", at intake and release

PREVIEW_CHARS = 64  # an idea's first words in a release list (the deck shows it whole)


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """One line of at most ``limit`` characters, cut at a word where it can be."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,.;:-") + "…"


@dataclass(frozen=True, slots=True)
class Batch:
    """Ideas to release, numbered from ``start``; ``merged``: some were identical (to each other or to
    ideas already shown) and appear once. How many were merged is deliberately not kept."""

    ideas: list[Released]
    merged: bool


def release_batch(
    texts: Sequence[str], rng: random.Random, *, start: int = 1, shown: Collection[str] = ()
) -> Batch:
    """Shuffle, drop ideas identical to one already shown or to one earlier in the shuffle, number."""
    seen = {comparison_key(t) for t in shown}
    plan = release_plan(texts, rng)
    kept: list[str] = []
    for idea in plan:
        key = comparison_key(idea.text)
        if key in seen:
            continue
        seen.add(key)
        kept.append(idea.text)
    ideas = [Released(number, text) for number, text in enumerate(kept, start=start)]
    return Batch(ideas, merged=len(kept) < len(texts))


def distinct_new(texts: Sequence[str], shown: Collection[str]) -> int:
    """How many different ideas ``texts`` would add to those ``shown``."""
    old = {comparison_key(t) for t in shown}
    return len({comparison_key(t) for t in texts} - old)


def continuous_allowed(participants: int, minimum: int) -> bool:
    """Continuous mode releases small batches: only in a crowd of at least ``minimum`` people."""
    return participants >= minimum


def next_batch_at(
    now: dt.datetime,
    *,
    waiting: int,
    batch_min: int,
    last_release: dt.datetime | None,
    min_interval: dt.timedelta,
    jitter: dt.timedelta,
    rng: random.Random,
) -> dt.datetime | None:
    """When the next batch goes out: once at least ``batch_min`` different new ideas wait, no sooner
    than ``min_interval`` after the last release, plus a random delay of up to ``jitter`` (so that a
    batch's time says nothing about when its last idea arrived). None while too few wait."""
    if waiting < batch_min:
        return None
    earliest = now if last_release is None else max(now, last_release + min_interval)
    return earliest + dt.timedelta(seconds=rng.uniform(0, jitter.total_seconds()))
