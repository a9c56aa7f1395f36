"""Retention and erasure: what is kept about people, and for how long (no I/O here).

Who took part is needed while a round runs (one ballot per person, the quota, a sector for the
figures) and a little after (a late question, a report). Then it goes: ``roster_days`` after a round
closes or is cancelled, every row that names a person is deleted, and a round left in one phase
with no deadline for ``idle_round_days`` is cancelled, which destroys its key. What people said and
voted stays: it was never stored with who they are.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields

from bot.domain.phases import OPEN_PHASES, Phase

# Platform retries (Slack's within minutes, a Socket Mode redelivery) come well inside a day; the
# inbox keeps request ids one more day, then forgets them.
INBOX_DAYS = 1
# Actions still followed up keep their owner's reference (reminders reach them) until this long
# after they are finished or due.
FINISHED_ACTIONS = frozenset({"done", "cancelled"})


ENDED = (Phase.CLOSED.value, Phase.CANCELLED.value)


def roster_cutoff(now: dt.datetime, roster_days: int) -> dt.datetime:
    """Rounds that ended (closed or cancelled) at or before this lose their roster and every other
    row naming a person."""
    return now - dt.timedelta(days=roster_days)


def roster_expired(phase: str, phase_since: dt.datetime, now: dt.datetime, roster_days: int) -> bool:
    return phase in ENDED and phase_since <= roster_cutoff(now, roster_days)


def owner_ref_expired(status: str, due: dt.date, today: dt.date, roster_days: int) -> bool:
    """An action's owner reference outlives the roster while the action is followed up: until it is
    finished, or ``roster_days`` after its due date."""
    return status in FINISHED_ACTIONS or due + dt.timedelta(days=roster_days) < today


def goal_owner_ref_expired(deadline: dt.date, followed: bool, today: dt.date, roster_days: int) -> bool:
    """A goal's owner is asked for check-ins while the round is followed up and the goal runs: the
    reference goes when follow-up is over, or ``roster_days`` after the goal's deadline."""
    return not followed or deadline + dt.timedelta(days=roster_days) < today


def still_followed(
    goal_dates: list[dt.date], open_dues: list[dt.date], today: dt.date, roster_days: int
) -> bool:
    """An ended round is followed up while a goal's deadline (or pilot review) or an unfinished
    action's due date is less than ``roster_days`` behind: its conveners hear of overdue actions and
    pilot reviews, and its owners are asked for progress, until then."""
    horizon = today - dt.timedelta(days=roster_days)
    return any(d >= horizon for d in [*goal_dates, *open_dues])


def inbox_cutoff(today: dt.date) -> dt.date:
    """Request ids kept before this day are forgotten."""
    return today - dt.timedelta(days=INBOX_DAYS)


def idle_cutoff(now: dt.datetime, idle_days: int) -> dt.datetime:
    """An open round that entered its phase before this, with no deadline pending, is idle."""
    return now - dt.timedelta(days=idle_days)


def is_idle(
    phase: str, phase_since: dt.datetime, now: dt.datetime, idle_days: int, *, deadline_pending: bool
) -> bool:
    return phase in OPEN_PHASES and not deadline_pending and phase_since < idle_cutoff(now, idle_days)


def user_of(ref: str) -> tuple[str, str] | None:
    """(platform, user id) of a stored person reference (``UserRef.key()``), or None."""
    parts = ref.split("\x1f")
    return (parts[0], parts[-1]) if len(parts) == 3 else None


@dataclass
class Counts:
    """What a purge or an erasure did, by kind of row (the confirmation names each non-zero one)."""

    def total(self) -> int:
        return sum(int(getattr(self, f.name)) for f in fields(self))


@dataclass
class Purged(Counts):
    rounds: int = 0
    roster: int = 0
    convener_refs: int = 0
    owner_refs: int = 0
    messages: int = 0
    inbox: int = 0
    mutes: int = 0

    def deleted_anything(self) -> bool:
        return self.total() > self.rounds


@dataclass
class Erased(Counts):
    rounds: int = 0  # rounds the person was in, or steered
    open_rounds: int = 0
    roster: int = 0
    convener_refs: int = 0
    owner_refs: int = 0
    mutes: int = 0  # their "no reminders" choice
    messages: int = 0  # waiting to be delivered to them
    posts: int = 0  # delivered posts of rounds where they owned an action (their name may be in them)
    ideas_detached: int = 0  # unreleased ideas, still theirs by pseudonym until now
    ballots_detached: int = 0  # ballots of a vote still open
    keys_unavailable: int = 0  # open rounds whose key could not be read: still linked until close
