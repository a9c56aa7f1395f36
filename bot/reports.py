"""What a round produced, as data: for `convene export`, the demo's report.json and report.md, and
how its follow-up went (goals' check-ins and progress, actions' status and history).

Ideas carry no author, user, platform or sector field: the schema has none to give. Action owners
are attributed on purpose; Delphi estimates are not exported, only the spreads that were shown.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain import accountability
from bot.domain.errors import DomainError
from bot.domain.moderation import LOG_FIELDS, LogEntry
from bot.persistence.tables import (
    ActionNoteRow,
    ActionRow,
    BallotRow,
    CheckinRow,
    DelphiRow,
    FollowUpRow,
    GoalRow,
    IdeaRow,
    ModerationLogRow,
    RoundRow,
)
from bot.prompts import Prompts


async def find_round(sessions: async_sessionmaker[AsyncSession], ref: str) -> str:
    """A round id from its id or an unambiguous prefix of it."""
    ref = ref.strip().lower()
    if not ref.isalnum():
        raise DomainError("unknown_round")
    async with sessions() as s:
        ids = list(await s.scalars(select(RoundRow.id).where(RoundRow.id.startswith(ref)).limit(2)))
    if len(ids) != 1:
        raise DomainError("unknown_round")
    return ids[0]


async def round_report(sessions: async_sessionmaker[AsyncSession], round_id: str) -> dict[str, Any]:
    async with sessions() as s:
        rnd = await s.get(RoundRow, round_id)
        if rnd is None:
            raise DomainError("unknown_round")
        ideas = list(
            await s.scalars(
                select(IdeaRow)
                .where(IdeaRow.round_id == round_id, IdeaRow.status == "released")
                .order_by(IdeaRow.rank.is_(None), IdeaRow.rank, IdeaRow.number)
            )
        )
        goals = list(
            await s.scalars(select(GoalRow).where(GoalRow.round_id == round_id).order_by(GoalRow.number))
        )
        actions = list(
            await s.scalars(
                select(ActionRow).where(ActionRow.round_id == round_id).order_by(ActionRow.number)
            )
        )
        checkins = await _grouped(s, CheckinRow, CheckinRow.goal_id, [g.id for g in goals])
        notes = await _grouped(s, ActionNoteRow, ActionNoteRow.action_id, [a.id for a in actions])
        delphis = {
            d.goal_id: d for d in await s.scalars(select(DelphiRow).where(DelphiRow.round_id == round_id))
        }
        followup = await s.get(FollowUpRow, round_id)
        moderation = list(
            await s.scalars(
                select(ModerationLogRow)
                .where(ModerationLogRow.round_id == round_id)
                .order_by(ModerationLogRow.day, ModerationLogRow.decision, ModerationLogRow.id)
            )
        )
    goal_titles = {g.id: g.title for g in goals}
    return {
        "round": {"id": rnd.id, "title": rnd.title, "purpose": rnd.purpose, "phase": rnd.phase},
        "ideas": [
            {
                "id": i.id,
                "label": i.number,
                "text": i.text,
                "agree": i.agree or 0,
                "disagree": i.disagree or 0,
                "pass": i.passes or 0,
                "score": i.score if i.score is not None else 0.0,
                "rank": i.rank,
                "urgency": i.urgency,
                "impact": i.impact,
            }
            for i in ideas
        ],
        "goals": [
            {
                "number": g.number,
                "idea": g.idea_number,
                "title": g.title,
                "outcome": g.outcome,
                "metric": g.metric,
                "unit": g.unit,
                "baseline": g.baseline,
                "target": g.target,
                "deadline": g.deadline.isoformat(),
                "pilot": g.pilot,
                "review_date": g.review_date.isoformat() if g.review_date else None,
                **_goal_progress(g, checkins.get(g.id, []), delphis.get(g.id)),
            }
            for g in goals
        ],
        "actions": [
            {
                "number": a.number,
                "title": a.title,
                "goal": goal_titles.get(a.goal_id),
                "owner": a.owner_name,
                "due": a.due.isoformat(),
                "sponsor": a.sponsor,
                "resources": a.resources,
                "status": a.status,
                "done_on": a.done_on.isoformat() if a.done_on else None,
                "history": [
                    {"day": n.day.isoformat(), "status": n.status, "note": n.note, "by": n.by_name}
                    for n in notes.get(a.id, [])
                ],
            }
            for a in actions
        ],
        "followup": {
            "started_on": followup.started_on.isoformat(),
            "progress_days": followup.progress_days,
            "over": followup.over,
        }
        if followup
        else None,
        # What the conveners decided: day, decision, reason, a hash of the text; never an author.
        "moderation": [
            LogEntry(m.day.isoformat(), m.decision, m.reason, m.text_hash).row() for m in moderation
        ],
    }


async def _grouped(s: AsyncSession, table: Any, key: Any, ids: list[str]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    if ids:
        for row in await s.scalars(select(table).where(key.in_(ids)).order_by(key, table.number)):
            out.setdefault(getattr(row, key.key), []).append(row)
    return out


def _goal_progress(g: GoalRow, checkins: list[CheckinRow], delphi: DelphiRow | None) -> dict[str, Any]:
    """Follow-up figures of a goal: who owns it, its progress and check-ins, the pilot's review and
    the Delphi spreads shown (never an estimate: those are content, like ballots)."""
    progress = accountability.progress(g.baseline, g.target, g.current)
    return {
        "owner": g.owner_name,
        "sponsor": g.sponsor,
        "data_source": g.data_source,
        "checkin_cadence": g.checkin_cadence,
        "current": g.current,
        "progress": progress.percent if progress else None,
        "checkins": [{"day": c.day.isoformat(), "value": c.value, "note": c.note} for c in checkins],
        "pilot_decision": g.pilot_decision,
        "pilot_note": g.pilot_note,
        "pilot_decided_on": g.pilot_decided_on.isoformat() if g.pilot_decided_on else None,
        "delphi": {"status": delphi.status, "spreads": delphi.published, "fixed_target": delphi.fixed_target}
        if delphi
        else None,
    }


def render_report_md(report: dict[str, Any], prompts: Prompts | None = None) -> str:
    return (prompts or Prompts()).render("cli/report_md", report) + "\n"


HEADERS = {"moderation": LOG_FIELDS}  # tables written with their header even when empty


def report_csv(report: dict[str, Any], table: str = "ideas") -> str:
    """One table as CSV; a history (check-ins, progress notes) is one cell, oldest first."""
    rows: list[dict[str, Any]] = report[table]
    out = io.StringIO()
    fields = list(rows[0]) if rows else list(HEADERS.get(table, ()))
    if fields:
        writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
    return out.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        return " | ".join(
            " ".join(str(v) for v in item.values() if v not in (None, ""))
            if isinstance(item, dict)
            else str(item)
            for item in value
        )
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value


async def export_polis(sessions: async_sessionmaker[AsyncSession], round_id: str, folder: Path) -> None:
    """comments.csv, votes.csv and participants-votes.csv in Polis's format. Voters are numbered
    per export (0, 1, 2...) from the detached ballot labels: no real id exists to leak."""
    import numpy as np

    from bot.consensus import VoteTable
    from bot.consensus.polis import write_polis_export
    from bot.domain.ranking import VALUES

    async with sessions() as s:
        ideas = list(
            await s.execute(
                select(IdeaRow.number, IdeaRow.text)
                .where(IdeaRow.round_id == round_id, IdeaRow.status == "released")
                .order_by(IdeaRow.number)
            )
        )
        ballots = list(
            await s.execute(
                select(BallotRow.voter_key, BallotRow.idea_number, BallotRow.choice).where(
                    BallotRow.round_id == round_id, BallotRow.choice.is_not(None)
                )
            )
        )
    column = {number: i for i, (number, _text) in enumerate(ideas)}
    voters: dict[str, int] = {}
    for voter, _n, _c in sorted(ballots, key=lambda b: str(b[0])):
        voters.setdefault(str(voter), len(voters))
    rows = [(voters[str(v)], column[n], VALUES[str(c)]) for v, n, c in ballots if n in column]
    table = VoteTable(
        n_participants=len(voters),
        n_ideas=len(ideas),
        participant=np.array([r[0] for r in rows], dtype=np.int32),
        idea=np.array([r[1] for r in rows], dtype=np.int32),
        value=np.array([r[2] for r in rows], dtype=np.int8),
    )
    write_polis_export(
        folder,
        statements=[(int(n or 0), str(t)) for n, t in ideas],
        table=table,
        participant_labels=[str(i) for i in range(len(voters))],
    )
