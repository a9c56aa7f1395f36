"""Retention and erasure: who took part is forgotten after a round, and at once on request.

* **The retention pass** (a daily timer with no round, fired through the bus): rounds that ended
  more than ``retention.roster_days`` ago lose their roster, their conveners' references and the
  delivered posts and replies written for them; action owners' references go once their actions
  are no longer followed up; private replies that failed for good, and request ids older than a
  day, go everywhere. Rounds idle for ``retention.idle_round_days`` get an ``idle_round`` timer due
  at once: the rounds capability cancels them through the bus, with nobody behind it, which
  destroys their keys and tells their channels. ``convene purge`` runs the same purge.
* **Erasure** (``convene erase``): one person's roster rows in every round, their references as a
  convener or an action owner and every message waiting for them are deleted. What they said and
  voted stays, detached: in an open round their unreleased ideas and their ballots lose the
  pseudonym that tied them to the person.
* After a close, a cancel, a purge or an erasure, SQLite's write-ahead log is checkpointed and
  truncated (``Compactor``); on PostgreSQL the operator's VACUUM does that work (ARCHITECTURE.md).

Rules (what is due, and when) live in ``bot/domain/retention.py``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain import commands as c
from bot.domain import retention as rules
from bot.domain.errors import DomainError
from bot.domain.events import PhaseEntered
from bot.domain.phases import OPEN_PHASES, Phase
from bot.ids import new_id
from bot.keys import KeyUnavailable
from bot.messages import Visibility
from bot.persistence.tables import (
    ActionRow,
    BallotRow,
    FollowUpRow,
    GoalRow,
    IdeaRow,
    InboxRow,
    OutboxRow,
    ParticipantRow,
    ReminderMuteRow,
    RoundRow,
    TimerRow,
)
from bot.ports import Clock
from bot.refs import Platform, UserRef
from bot.service import queries
from bot.service.cards import action_card, action_slot
from bot.service.handlers import moderation
from bot.service.registry import Capability, Timer
from bot.service.unit import Unit

cap = Capability("retention")

EVERY = dt.timedelta(days=1)
NO_ROUND = "-"  # the phase column of a timer that belongs to no round
IN_PROGRESS = ("pending", "in_flight")  # outbox rows still on their way: never purged


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


# --- the daily pass ---------------------------------------------------------------------------


@cap.command(
    c.ApplyRetention,
    in_round=False,
    timer=Timer(queries.RETENTION, lambda _t: c.ApplyRetention()),
)
async def apply_retention(u: Unit, cmd: c.ApplyRetention) -> None:
    await purge(u)
    await flag_idle_rounds(u)
    if not await _retention_pending(u.s):
        u.s.add(_retention_timer(u.now() + EVERY))


def _retention_timer(due: dt.datetime) -> TimerRow:
    return TimerRow(
        id=new_id(), round_id=None, kind=queries.RETENTION, phase=NO_ROUND, due_at=due, status="pending"
    )


async def _retention_pending(s: AsyncSession) -> bool:
    found = await s.scalar(
        select(TimerRow.id).where(TimerRow.kind == queries.RETENTION, TimerRow.status == "pending").limit(1)
    )
    return found is not None


async def ensure_daily_pass(sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
    """At start-up: the retention pass is due now if no pass is scheduled (a new database)."""
    async with sessions() as s, s.begin():
        if not await _retention_pending(s):
            s.add(_retention_timer(clock.now()))


async def flag_idle_rounds(u: Unit) -> int:
    """Give each idle round an ``idle_round`` timer due now; the bus cancels it."""
    now = u.now()
    deadline = exists().where(
        TimerRow.round_id == RoundRow.id,
        TimerRow.kind.in_([queries.PHASE_DEADLINE, queries.IDLE_ROUND]),
        TimerRow.status == "pending",
    )
    idle = await u.s.execute(
        select(RoundRow.id, RoundRow.phase).where(
            RoundRow.phase.in_([p.value for p in OPEN_PHASES]),
            RoundRow.phase_since < rules.idle_cutoff(now, u.config.retention.idle_round_days),
            ~deadline,
        )
    )
    found = 0
    for round_id, phase in idle:
        u.s.add(
            TimerRow(
                id=new_id(),
                round_id=round_id,
                kind=queries.IDLE_ROUND,
                phase=phase,
                due_at=now,
                status="pending",
            )
        )
        found += 1
    return found


# --- purge ------------------------------------------------------------------------------------


async def purge(u: Unit) -> rules.Purged:
    """Delete what retention says is due (see the module docstring). Idempotent."""
    now, today, days = u.now(), u.today(), u.config.retention.roster_days
    ended = select(RoundRow.id).where(
        RoundRow.phase.in_(rules.ENDED), RoundRow.phase_since <= rules.roster_cutoff(now, days)
    )
    out = rules.Purged()
    fresh = list(await u.s.scalars(ended.where(RoundRow.roster_purged.is_(False))))
    if fresh:
        out.rounds = len(fresh)
        out.roster = _count(
            await u.s.execute(delete(ParticipantRow).where(ParticipantRow.round_id.in_(fresh)))
        )
        for rnd in await u.s.scalars(select(RoundRow).where(RoundRow.id.in_(fresh))):
            rnd.roster_purged = True
    followed = await _followed(u, ended, today, days)
    for rnd in await u.s.scalars(select(RoundRow).where(RoundRow.id.in_(ended))):
        if rnd.conveners and rnd.id not in followed:
            out.convener_refs += len(rnd.conveners)
            rnd.conveners = []
    owned = await u.s.scalars(
        select(ActionRow).where(ActionRow.round_id.in_(ended), ActionRow.owner_ref.is_not(None))
    )
    for action in owned:
        if rules.owner_ref_expired(action.status, action.due, today, days):
            _forget_owner(action, keep_name=True)
            out.owner_refs += 1
    goals = await u.s.scalars(
        select(GoalRow).where(GoalRow.round_id.in_(ended), GoalRow.owner_ref.is_not(None))
    )
    for goal in goals:
        if rules.goal_owner_ref_expired(goal.deadline, goal.round_id in followed, today, days):
            _forget_goal_owner(goal, keep_name=True)
            out.owner_refs += 1
    # Delivered posts of ended rounds (their bodies may name action owners), and private replies
    # that failed for good anywhere (emptied, but still naming their recipient).
    out.messages = _count(
        await u.s.execute(
            delete(OutboxRow).where(OutboxRow.round_id.in_(ended), OutboxRow.status.not_in(IN_PROGRESS))
        )
    )
    out.messages += _count(
        await u.s.execute(
            delete(OutboxRow).where(
                OutboxRow.visibility != Visibility.PUBLIC.value, OutboxRow.status.not_in(IN_PROGRESS)
            )
        )
    )
    out.inbox = _count(await u.s.execute(delete(InboxRow).where(InboxRow.day < rules.inbox_cutoff(today))))
    if out.deleted_anything():
        u.services.compactor.after_commit(u.s)
    return out


async def _followed(u: Unit, ended: Any, today: dt.date, days: int) -> set[str]:
    """Ended rounds whose follow-up is still on (see ``rules.still_followed``)."""
    on = set(await u.s.scalars(select(FollowUpRow.round_id).where(FollowUpRow.over.is_(False))))
    dates: dict[str, tuple[list[dt.date], list[dt.date]]] = {}
    for round_id, deadline, review in await u.s.execute(
        select(GoalRow.round_id, GoalRow.deadline, GoalRow.review_date).where(GoalRow.round_id.in_(ended))
    ):
        dates.setdefault(round_id, ([], []))[0].extend(d for d in (deadline, review) if d)
    for round_id, due, status in await u.s.execute(
        select(ActionRow.round_id, ActionRow.due, ActionRow.status).where(ActionRow.round_id.in_(ended))
    ):
        if status not in rules.FINISHED_ACTIONS:
            dates.setdefault(round_id, ([], []))[1].append(due)
    return {
        r for r, (goals, dues) in dates.items() if r in on and rules.still_followed(goals, dues, today, days)
    }


def _forget_goal_owner(goal: GoalRow, *, keep_name: bool) -> None:
    who = rules.user_of(goal.owner_ref or "")
    if not keep_name or (who is not None and goal.owner_name == who[1]):
        goal.owner_name = None
    goal.owner_ref = None


def _forget_owner(action: ActionRow, *, keep_name: bool) -> None:
    """The reference goes; the name an owner chose to show stays on a finished record, unless it is
    only their platform id (no display name) or they asked to be erased."""
    who = rules.user_of(action.owner_ref or "")
    if not keep_name or (who is not None and action.owner_name == who[1]):
        action.owner_name = None
    action.owner_ref = None


# --- erasure ----------------------------------------------------------------------------------


async def erase(u: Unit, platform: str, user_id: str) -> rules.Erased:
    """Erase one person (``platform``, their platform user id) from every round."""
    out = rules.Erased()
    person = (platform, user_id)
    roster = list(
        await u.s.scalars(
            select(ParticipantRow).where(
                ParticipantRow.platform == platform, ParticipantRow.user_id == user_id
            )
        )
    )
    touched = {p.round_id for p in roster}
    rounds = {r.id: r for r in await u.s.scalars(select(RoundRow).where(RoundRow.id.in_(touched)))}
    for row in roster:
        rnd = rounds[row.round_id]
        if rnd.phase in OPEN_PHASES and not rnd.key_destroyed:
            out.open_rounds += 1
            await _detach(u, rnd, UserRef(Platform(platform), row.workspace_id, user_id), out)
    out.roster = _count(
        await u.s.execute(
            delete(ParticipantRow).where(
                ParticipantRow.platform == platform, ParticipantRow.user_id == user_id
            )
        )
    )
    for rnd in await u.s.scalars(select(RoundRow)):  # an operator's command: every round, once
        kept = [ref for ref in rnd.conveners if rules.user_of(ref) != person]
        if len(kept) != len(rnd.conveners):
            out.convener_refs += len(rnd.conveners) - len(kept)
            rnd.conveners = kept
            touched.add(rnd.id)
    owned = [
        a
        for a in await u.s.scalars(select(ActionRow).where(ActionRow.owner_ref.is_not(None)))
        if rules.user_of(a.owner_ref or "") == person
    ]
    for action in owned:
        _forget_owner(action, keep_name=False)
        out.owner_refs += 1
        touched.add(action.round_id)
    for owned_goal in await u.s.scalars(select(GoalRow).where(GoalRow.owner_ref.is_not(None))):
        if rules.user_of(owned_goal.owner_ref or "") == person:
            _forget_goal_owner(owned_goal, keep_name=False)
            out.owner_refs += 1
            touched.add(owned_goal.round_id)
    for mute in await u.s.scalars(select(ReminderMuteRow)):
        if rules.user_of(mute.person) == person or mute.person == f"{platform}\x1f{user_id}":
            await u.s.delete(mute)
            out.mutes += 1
    await u.s.flush()
    for action in owned:  # the cards that named them now say the action needs an owner
        where = await u.s.get(RoundRow, action.round_id)
        goal = await u.s.get(GoalRow, action.goal_id)
        if where is not None and goal is not None:
            await u.post(action_card(where, action, goal), slot=action_slot(action), round_id=where.id)
    # Messages waiting for them, and the delivered posts that showed their name as an owner.
    out.messages = _count(
        await u.s.execute(
            delete(OutboxRow).where(OutboxRow.platform == platform, OutboxRow.recipient_id == user_id)
        )
    )
    named = {a.round_id for a in owned}
    if named:
        out.posts = _count(
            await u.s.execute(
                delete(OutboxRow).where(
                    OutboxRow.round_id.in_(named),
                    OutboxRow.visibility == Visibility.PUBLIC.value,
                    OutboxRow.status.not_in(IN_PROGRESS),
                )
            )
        )
    out.rounds = len(touched)
    u.services.compactor.after_commit(u.s)
    return out


async def _detach(u: Unit, rnd: RoundRow, user: UserRef, out: rules.Erased) -> None:
    """In an open round, what the person said and voted stops being theirs: their unreleased ideas
    lose the author pseudonym (they stay, to be released unnamed), and their ballots take a random
    label (still one voter for the tally, no longer them)."""
    try:
        mine = u.keys.pseudonym(rnd.id, user)
    except (DomainError, KeyUnavailable):
        out.keys_unavailable += 1
        return
    out.ideas_detached += _count(
        await u.s.execute(
            update(IdeaRow)
            .where(IdeaRow.round_id == rnd.id, IdeaRow.author_key == mine)
            .values(author_key=None)
        )
    )
    out.ballots_detached += _count(
        await u.s.execute(
            update(BallotRow)
            .where(BallotRow.round_id == rnd.id, BallotRow.voter_key == mine)
            .values(voter_key=new_id())
        )
    )
    await moderation.forget_person(u, rnd, mine)  # marks that the round key matched to them


# --- after a close ----------------------------------------------------------------------------


@cap.on(PhaseEntered, target=(Phase.CLOSED, Phase.CANCELLED))
async def compact_after_close(u: Unit, event: PhaseEntered) -> None:
    """The close rewrote the ballots and dropped unreleased ideas: leave no old copy in the WAL."""
    u.services.compactor.after_commit(u.s)
