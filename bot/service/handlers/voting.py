"""Voting and the tally: ballots and ratings (committed in batches), hidden until voting closes; then
the consensus engine ranks the ideas and the results are posted with a chart."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from bot.domain import commands as c
from bot.domain import rules, validation
from bot.domain.anonymity import BallotCopy, relabel_ballots
from bot.domain.errors import DomainError
from bot.domain.events import PhaseEntered
from bot.domain.phases import Phase
from bot.domain.ranking import BallotFact, IdeaResult, rank_ideas
from bot.domain.rules import Who
from bot.domain.validation import ref_number
from bot.forms import FormField, Option
from bot.ids import new_id
from bot.messages import Message, Part
from bot.persistence.tables import BallotRow, ConversationRow, IdeaRow, InboxRow, ParticipantRow, RoundRow
from bot.prompts import PromptKey
from bot.refs import Platform, UserRef
from bot.service.registry import Button, Capability, FormDef, FormInput
from bot.service.unit import Unit, button

cap = Capability("voting")

CHOICES = {"a": "agree", "d": "disagree", "p": "pass"}
VOTE_PHASES = (Phase.VOTE,)
UNDECLARED = "prefer_not_to_say"
Ballot = c.CastBallot | c.RateIdea


def _ballot(ctx: c.Context, rid: str, args: tuple[str, ...]) -> c.CastBallot:
    if args[1] not in CHOICES:
        raise DomainError("unknown_button")
    return c.CastBallot(ctx, rid, ref_number(args[0]), CHOICES[args[1]])


async def _rate_fields(u: Unit, arg: str | None) -> tuple[tuple[FormField, ...], str]:
    label = ref_number(arg or "")
    scale = tuple(Option(str(n), u.label("scale", str(n))) for n in range(1, 6))
    fields = (
        FormField("urgency", u.label("fields", "urgency"), "select", required=False, options=scale),
        FormField("impact", u.label("fields", "impact"), "select", required=False, options=scale),
    )
    return fields, u.render(PromptKey.RATE_INTRO, {"label": label})


def _rate_command(f: FormInput) -> c.RateIdea:
    urgency, impact = validation.rating_from_form(f.values)
    assert f.round_id is not None
    return c.RateIdea(f.ctx, f.round_id, ref_number(f.arg or ""), urgency, impact)


@cap.command(
    c.CastBallot, phases=VOTE_PHASES, who=Who.MEMBER, button=Button("v", 2, build=_ballot), batched=True
)
@cap.command(
    c.RateIdea,
    phases=VOTE_PHASES,
    who=Who.MEMBER,
    button=Button("rate", 1),
    form=FormDef("rate", _rate_fields, _rate_command),
    batched=True,
)
async def apply_ballots(u: Unit, commands: list[Ballot]) -> None:
    """Validate and store a batch of ballots in one transaction. Each refused ballot gets its own
    private error; the others are stored. The rule is the registered one (vote phase, joined)."""
    s = u.s
    request_ids = [cmd.ctx.request_id for cmd in commands if cmd.ctx.request_id]
    seen: set[str] = set()
    if request_ids:
        seen = set(await s.scalars(select(InboxRow.key).where(InboxRow.key.in_(request_ids))))
    rounds: dict[tuple[str, str, str, str], RoundRow | None] = {}
    max_idea: dict[str, int] = {}
    votes: dict[tuple[str, int, str], dict[str, Any]] = {}
    ratings: dict[tuple[str, int, str], dict[str, Any]] = {}
    today = u.today()
    # Who of this batch has joined which round: one query for the whole batch, not one per click.
    roster = {
        tuple(row)
        for row in await s.execute(
            select(
                ParticipantRow.round_id,
                ParticipantRow.platform,
                ParticipantRow.workspace_id,
                ParticipantRow.user_id,
            ).where(
                ParticipantRow.round_id.in_({cmd.round_id for cmd in commands}),
                ParticipantRow.user_id.in_({cmd.ctx.actor.user_id for cmd in commands}),
            )
        )
    }
    for cmd in commands:
        ctx = cmd.ctx
        if ctx.request_id:
            if ctx.request_id in seen:
                continue  # a platform retry of a click already stored
            seen.add(ctx.request_id)
            s.add(InboxRow(key=ctx.request_id, day=today))
        try:
            where = (cmd.round_id, ctx.where.platform.value, ctx.where.workspace_id, ctx.where.channel_id)
            if where not in rounds:
                rounds[where] = await s.scalar(
                    select(RoundRow)
                    .join(ConversationRow, ConversationRow.round_id == RoundRow.id)
                    .where(
                        RoundRow.id == cmd.round_id,
                        ConversationRow.platform == where[1],
                        ConversationRow.workspace_id == where[2],
                        ConversationRow.channel_id == where[3],
                    )
                )
            rnd = rounds[where]
            if rnd is None:
                raise DomainError("round_gone")
            rules.check_phase(rnd.phase, VOTE_PHASES)
            if rnd.id not in max_idea:
                highest = await s.scalar(select(func.max(IdeaRow.number)).where(IdeaRow.round_id == rnd.id))
                max_idea[rnd.id] = int(highest or 0)
            if not 1 <= cmd.idea <= max_idea[rnd.id]:
                raise DomainError("unknown_idea")
            joined = (rnd.id, ctx.actor.platform.value, ctx.actor.workspace_id, ctx.actor.user_id) in roster
            rules.check_who(Who.MEMBER, convener=False, joined=joined, round_title=rnd.title)
            key = (rnd.id, cmd.idea, u.keys.pseudonym(rnd.id, ctx.actor))
            if isinstance(cmd, c.CastBallot):
                votes[key] = {"choice": cmd.choice}  # a later click in the same batch wins
                reply = PromptKey.BALLOT_RECORDED
            else:
                prev = ratings.get(key, {})
                ratings[key] = {
                    "urgency": cmd.urgency if cmd.urgency is not None else prev.get("urgency"),
                    "impact": cmd.impact if cmd.impact is not None else prev.get("impact"),
                }
                reply = PromptKey.RATING_RECORDED
            u.reply(reply, {"label": cmd.idea}, to=ctx, round_id=rnd.id)
        except DomainError as err:
            u.reply(PromptKey.ERROR, {"code": err.code, **err.params}, to=ctx)
    await _upsert(u, votes, ratings)


async def _upsert(
    u: Unit,
    votes: dict[tuple[str, int, str], dict[str, Any]],
    ratings: dict[tuple[str, int, str], dict[str, Any]],
) -> None:
    insert = postgresql.insert if u.s.get_bind().dialect.name == "postgresql" else sqlite.insert
    conflict = [BallotRow.round_id, BallotRow.idea_number, BallotRow.voter_key]
    if votes:
        stmt = insert(BallotRow)
        stmt = stmt.on_conflict_do_update(index_elements=conflict, set_={"choice": stmt.excluded.choice})
        rows = [
            {"id": new_id(), "round_id": r, "idea_number": i, "voter_key": v, "choice": d["choice"]}
            for (r, i, v), d in votes.items()
        ]
        await u.s.execute(stmt, rows)
    if ratings:
        stmt = insert(BallotRow)
        stmt = stmt.on_conflict_do_update(
            index_elements=conflict,
            set_={
                "urgency": func.coalesce(stmt.excluded.urgency, BallotRow.urgency),
                "impact": func.coalesce(stmt.excluded.impact, BallotRow.impact),
            },
        )
        rows = [
            {"id": new_id(), "round_id": r, "idea_number": i, "voter_key": v, "choice": None, **d}
            for (r, i, v), d in ratings.items()
        ]
        await u.s.execute(stmt, rows)


# --- the tally --------------------------------------------------------------------------------


async def voter_sectors(u: Unit, rnd: RoundRow) -> dict[str, str | None]:
    """voter pseudonym -> declared sector, computable only while the round key exists."""
    roster = await u.s.execute(
        select(
            ParticipantRow.platform,
            ParticipantRow.workspace_id,
            ParticipantRow.user_id,
            ParticipantRow.sector,
        ).where(ParticipantRow.round_id == rnd.id)
    )
    out: dict[str, str | None] = {}
    for platform, workspace, user, sector in roster:
        voter = u.keys.pseudonym(rnd.id, UserRef(Platform(platform), workspace, user))
        out[voter] = None if sector in (None, UNDECLARED) else sector
    return out


def sector_figures(result: IdeaResult, declarable: list[str], k: int) -> dict[str, Any]:
    """The sector figures an idea's result may show (each cell already passed the engine's k rule),
    and whether to say that the other sectors' figures are withheld. That line depends only on what
    is shown and on the round's list of sectors, so it tells nothing about who voted."""
    shown = [{"name": name, "agree": round(share * 100)} for name, share in result.sectors]
    hidden = bool(set(declarable) - {name for name, _ in result.sectors})
    return {"by_sector": shown, "sectors_hidden": hidden, "sector_k": k}


def _median(values: list[int]) -> float | None:
    if not values:
        return None
    v = sorted(values)
    mid = len(v) // 2
    return float(v[mid]) if len(v) % 2 else (v[mid - 1] + v[mid]) / 2


@cap.on(PhaseEntered, target=Phase.GOALS)
async def tally(u: Unit, event: PhaseEntered) -> None:
    rnd = u.round
    ideas = list(
        await u.s.scalars(select(IdeaRow).where(IdeaRow.round_id == rnd.id).order_by(IdeaRow.number))
    )
    ballots = list(await u.s.scalars(select(BallotRow).where(BallotRow.round_id == rnd.id)))
    facts = [BallotFact(b.voter_key, b.idea_number, b.choice) for b in ballots if b.choice]
    results = rank_ideas(
        [i.number for i in ideas if i.number is not None],
        facts,
        await voter_sectors(u, rnd),
        sector_min_voters=rnd.settings["sector_min_voters"],
    )
    ratings: dict[int, tuple[list[int], list[int]]] = {}
    for b in ballots:
        urgency, impact = ratings.setdefault(b.idea_number, ([], []))
        if b.urgency:
            urgency.append(b.urgency)
        if b.impact:
            impact.append(b.impact)
    by_number = {i.number: i for i in ideas}
    declarable = [x for x in rnd.settings["sectors"] if x != UNDECLARED]
    for r in results:
        row = by_number[r.idea]
        row.agree, row.disagree, row.passes, row.score, row.rank = (
            r.agree,
            r.disagree,
            r.passes,
            r.score,
            r.rank,
        )
        row.common_ground = r.common_ground
        urgency, impact = ratings.get(r.idea, ([], []))
        row.urgency, row.impact = _median(urgency), _median(impact)
    await detach_ballots(u, rnd)
    header = Part(PromptKey.RESULTS_HEADER, {"count": len(results), "title": rnd.title})
    parts = [
        Part(
            PromptKey.RESULTS_IDEA,
            {
                "rank": r.rank,
                "label": r.idea,
                "text": by_number[r.idea].text,
                "agree": r.agree,
                "disagree": r.disagree,
                "pass": r.passes,
                "score": round(r.score * 100),
                "common_ground": r.common_ground,
                "divisive": r.divisive,
                **sector_figures(r, declarable, rnd.settings["sector_min_voters"]),
                "urgency": by_number[r.idea].urgency,
                "impact": by_number[r.idea].impact,
            },
            (button(rnd.id, "goal", r.idea, label="make_goal"),),
        )
        for r in results
    ]
    await u.post_chunked(header, parts)
    if results:
        chart = {
            "labels": [r.idea for r in results],
            "gac": [r.score for r in results],
            "urgency": [by_number[r.idea].urgency for r in results],
            "impact": [by_number[r.idea].impact for r in results],
            "common_ground": [r.common_ground for r in results],
        }
        await u.post(Message((Part(PromptKey.CHART, {}),), chart=chart))
    await u.post(Message((Part(PromptKey.GOALS_OPEN, {"title": rnd.title}),)))


@cap.on(PhaseEntered, target=(Phase.CLOSED, Phase.CANCELLED))
async def detach_on_close(u: Unit, event: PhaseEntered) -> None:
    await detach_ballots(u, u.round)


async def detach_ballots(u: Unit, rnd: RoundRow) -> None:
    """Replace HMAC voter keys by random per-voter labels and rewrite the rows in random order,
    so that even the round key (were it recovered from a backup) links no one to a ballot."""
    ballots = list(await u.s.scalars(select(BallotRow).where(BallotRow.round_id == rnd.id)))
    if not ballots:
        return
    copies = relabel_ballots(
        [BallotCopy(b.voter_key, b.idea_number, b.choice, b.urgency, b.impact) for b in ballots],
        u.rng,
        new_id,
    )
    await u.s.execute(delete(BallotRow).where(BallotRow.round_id == rnd.id))
    await u.s.flush()
    for b in copies:
        u.s.add(
            BallotRow(
                id=new_id(),
                round_id=rnd.id,
                idea_number=b.idea,
                voter_key=b.voter,
                choice=b.choice,
                urgency=b.urgency,
                impact=b.impact,
            )
        )
    await u.s.flush()
