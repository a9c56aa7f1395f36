"""Channels whose posts keep failing (threats D3, D4): when the watch looks, whom it tells (no I/O).

The relay retries a public post for the life of its round, so an outage loses nothing; what it
cannot do alone is say so. The outbox watch, a recurring timer, looks every ``WATCH_EVERY`` for
channels whose posts have failed for longer than ``outbox.stall_minutes`` and tells each convener
of their round once, privately, with a button that queues the posts again at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from bot.domain.accountability import person_id

WATCH_EVERY = dt.timedelta(minutes=1)


def next_watch(now: dt.datetime) -> dt.datetime:
    """When the watch looks again (it re-arms itself on each pass)."""
    return now + WATCH_EVERY


def minutes_failing(since: dt.datetime, now: dt.datetime) -> int:
    """Whole minutes a channel's posts have been failing, as the notice says it."""
    return max(0, int((now - since).total_seconds() // 60))


def recipients(conveners: Iterable[str]) -> list[str]:
    """Each convener once (a Discord convener who linked channels in two guilds is one person), in
    the round's order."""
    seen: dict[str, str] = {}
    for key in conveners:
        if key:
            seen.setdefault(person_id(key), key)
    return list(seen.values())
