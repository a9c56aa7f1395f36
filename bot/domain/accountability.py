"""The accountability loop's rules (no I/O): who may update an action, when each reminder is due and
in which time zone, how far a metric is from its target, and the Delphi spread.

Actions and goal owners are attributed on purpose; Delphi estimates are not (see ``publishes``).
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.domain.errors import DomainError

# --- statuses and who may set them ---------------------------------------------------------------

STATUSES = ("not_started", "on_track", "at_risk", "blocked", "done")
CANCELLED = "cancelled"
CLOSED_STATUSES = frozenset({"done", CANCELLED})  # reminders stop for these
PILOT_DECISIONS = ("continue", "scale", "stop")


DISCORD_DM = "@me"  # the workspace of a Discord click in a DM (no guild)


def person_id(key: str) -> str:
    """One person whatever the conversation they act from. Discord user ids are global, and a click
    in a DM carries no guild ("@me"), so Discord people are their user id; elsewhere (a Slack user
    id belongs to its workspace) the whole key is."""
    platform, _workspace, user = split_key(key)
    return f"discord\x1f{user}" if platform == "discord" else key


def same_person(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and person_id(a) == person_id(b)


def platform_of(key: str) -> str:
    return key.partition("\x1f")[0]


def split_key(key: str) -> tuple[str, str, str]:
    """(platform, workspace, user id) of a person's key (``UserRef.key()``)."""
    platform, workspace, user = [*key.split("\x1f", 2), "", ""][:3]
    return platform, workspace, user


def is_round_convener(
    actor_key: str, flagged: bool, conveners: Collection[str], tenants: Collection[tuple[str, str]]
) -> bool:
    """Outside the round's channels (a DM) a convener is one the round recorded (who started or
    linked it), or one the adapter's config names in a tenant the round runs in: ``tenants`` are the
    round's (platform, workspace) pairs. A Slack user id means something only in its workspace, so a
    convener named for one workspace is nobody in another. On Discord, a click in a guild is flagged
    by that guild's convener roles, so it counts only in a round of that guild; a click in a DM
    carries no guild and is flagged only by the user ids the config names, so there the platform is
    enough."""
    if any(same_person(actor_key, c) for c in conveners):
        return True
    if not flagged:
        return False
    platform, workspace, _user = split_key(actor_key)
    if platform == "discord" and workspace == DISCORD_DM:
        return any(p == platform for p, _ in tenants)
    return (platform, workspace) in tenants


def check_may_update(actor_key: str, owner_ref: str | None, convener: bool) -> None:
    """An action's owner or a convener may report on it; nobody else."""
    if not convener and not same_person(actor_key, owner_ref):
        raise DomainError("not_action_owner")


def check_status(status: str, *, convener: bool) -> None:
    if status == CANCELLED:
        if not convener:
            raise DomainError("not_convener")
        return
    if status not in STATUSES:
        raise DomainError("unknown_button")


def owner_after_edit(old_name: str | None, old_ref: str | None, new_name: str | None) -> str | None:
    """A renamed owner is someone else (a named person or organisation, no platform identity): the
    old person stops getting the reminders."""
    return old_ref if new_name == old_name else None


# --- time zones and when reminders fall due -----------------------------------------------------


def zone(name: str) -> ZoneInfo:
    try:
        if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise DomainError("unknown_timezone", zone=name[:64]) from None


def at_local(day: dt.date, hour: int, tz: str) -> dt.datetime:
    """``hour`` o'clock on ``day`` in the round's time zone, as an aware UTC datetime. A local time
    skipped by a daylight-saving change falls to the next valid instant (zoneinfo's fold rules)."""
    local = dt.datetime.combine(day, dt.time(hour), tzinfo=zone(tz))
    return local.astimezone(dt.UTC)


def local_day(moment: dt.datetime, tz: str) -> dt.date:
    return moment.astimezone(zone(tz)).date()


DUE_SOON, DUE, OVERDUE = "due_soon", "due", "overdue"
REMINDER_KINDS = (DUE_SOON, DUE, OVERDUE)


@dataclass(frozen=True, slots=True)
class Reminder:
    kind: str  # due_soon | due | overdue
    at: dt.datetime


def reminder_plan(
    due: dt.date,
    now: dt.datetime,
    *,
    tz: str,
    hour: int,
    days_before: int,
    sent: Collection[str] = (),
) -> list[Reminder]:
    """The reminders an open action still needs: "due soon" ``days_before`` days ahead, "due" on
    the day, and the overdue escalation the day after, each at ``hour`` local time. One whose time
    has passed fires at once while it still makes sense ("due soon" before the due day, "due" on
    it); a reminder already sent is never planned again."""
    today = local_day(now, tz)
    plan: list[Reminder] = []

    def add(kind: str, day: dt.date, still_true: bool) -> None:
        if kind in sent:
            return
        at = at_local(day, hour, tz)
        if at > now:
            plan.append(Reminder(kind, at))
        elif still_true:
            plan.append(Reminder(kind, now))

    if days_before > 0:
        add(DUE_SOON, due - dt.timedelta(days=days_before), today < due)
    add(DUE, due, today == due)
    add(OVERDUE, due + dt.timedelta(days=1), True)
    return plan


def is_overdue(due: dt.date, status: str, today: dt.date) -> bool:
    return status not in CLOSED_STATUSES and due < today


# --- cadences: metric check-ins and the progress post --------------------------------------------

CADENCES = ("none", "weekly", "fortnightly", "monthly", "quarterly")
_DAYS = {"weekly": 7, "fortnightly": 14}
_MONTHS = {"monthly": 1, "quarterly": 3}


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later, or the month's last day when it is shorter (31 Jan → 28 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def cadence_day(start: dt.date, cadence: str, n: int) -> dt.date:
    """The n-th check-in day after ``start`` (n = 1 is the first)."""
    if cadence in _DAYS:
        return start + dt.timedelta(days=_DAYS[cadence] * n)
    if cadence in _MONTHS:
        return add_months(start, _MONTHS[cadence] * n)
    raise ValueError(f"no check-ins for cadence {cadence!r}")


def next_checkin(start: dt.date, cadence: str | None, after: dt.date, until: dt.date) -> dt.date | None:
    """The first check-in day of the series that starts at ``start`` which is later than ``after``
    and no later than the goal's deadline ``until``; None when check-ins are off or over."""
    if not cadence or cadence == "none":
        return None
    n = 1
    while (day := cadence_day(start, cadence, n)) <= after:
        n += 1
    return day if day <= until else None


def next_every(start: dt.date, every_days: int, after: dt.date) -> dt.date:
    """The first day of the series start + k·every_days (k ≥ 1) later than ``after``."""
    k = max(1, (after - start).days // every_days + 1)
    return start + dt.timedelta(days=every_days * k)


def follow_up_over(
    today: dt.date, open_actions: int, deadlines: Iterable[dt.date], undecided_reviews: Iterable[dt.date]
) -> bool:
    """Nothing is left to follow: every action is done or cancelled, every goal's deadline has
    passed and every pilot has been reviewed."""
    return open_actions == 0 and all(d < today for d in deadlines) and not list(undecided_reviews)


# --- how far a metric is from its target -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Progress:
    fraction: float  # 0 at the baseline, 1 at the target (either direction), clamped to [0, 1]
    percent: int
    filled: int  # cells of a bar ``width`` wide
    width: int
    met: bool

    def params(self) -> dict[str, object]:
        return {"percent": self.percent, "filled": self.filled, "width": self.width, "met": self.met}


def progress(baseline: float, target: float, current: float | None, width: int = 10) -> Progress | None:
    """Current value against baseline → target. A target below the baseline (fewer accidents)
    counts the fall; a value past the target is met; one moving away from it counts as none."""
    if current is None or target == baseline:
        return None
    raw = (current - baseline) / (target - baseline)
    fraction = min(1.0, max(0.0, raw))
    return Progress(
        fraction=fraction,
        percent=math.floor(fraction * 100 + 0.5),
        filled=math.floor(fraction * width + 0.5),
        width=width,
        met=raw >= 1.0,
    )


# --- Delphi: the spread of anonymous estimates -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spread:
    n: int
    median: float
    q1: float
    q3: float

    def to_json(self) -> dict[str, float | int]:
        return {"n": self.n, "median": self.median, "q1": self.q1, "q3": self.q3}


def quantile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default, Hyndman & Fan type 7)."""
    if not ordered:
        raise ValueError("no values")
    pos = (len(ordered) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def spread(values: Iterable[float]) -> Spread:
    ordered = sorted(values)
    return Spread(len(ordered), quantile(ordered, 0.5), quantile(ordered, 0.25), quantile(ordered, 0.75))


def publishes(count: int, k: int) -> bool:
    """Whether the estimate that makes ``count`` shows a new spread: in batches of k (k, 2k, ...), so
    that no published figure moves by one person's estimate and no edit follows one person's click."""
    return count >= k > 0 and count % k == 0
