"""Voting and the tally: ballots and ratings (committed in batches), hidden until voting closes; then
the consensus engine ranks the ideas and the results are posted with a chart."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, func, select

from bot.domain import commands as c
from bot.domain import deck, validation
from bot.domain.anonymity import BallotCopy, relabel_ballots
from bot.domain.errors import DomainError
from bot.domain.events import PhaseEntered
from bot.domain.phases import Phase
from bot.domain.ranking import BallotFact, IdeaResult, rank_ideas
from bot.domain.release import preview
from bot.domain.rules import Who
from bot.domain.validation import ref_number
from bot.forms import FormField, Option
from bot.ids import new_id
from bot.messages import ButtonSpec, Message, Part
from bot.persistence.db import dialect_insert
from bot.persistence.tables import BallotRow, IdeaRow, ParticipantRow, RoundRow
from bot.prompts import PromptKey
from bot.refs import Platform, UserRef
from bot.service.handlers.deck import Ask, Gate, answer_cards, notice, refusal
from bot.service.ingest import claim_requests
from bot.service.queries import padded
from bot.service.registry import Button, Capability, FormDef, FormInput
from bot.service.unit import Unit, button

cap = Capability("voting")

VOTE_PHASES = (Phase.VOTE,)
RESULTS_PER_MESSAGE = 10  # each with its "Make Idea n a goal" button (Discord: two rows of five)
RESULT_PREVIEW_CHARS = 160
UNDECLARED = "prefer_not_to_say"
Ballot = c.CastBallot | c.RateIdea


def _ballot(ctx: c.Context, rid: str, args: tuple[str, ...]) -> c.CastBallot:
    """A deck card's vote button: ``<idea>:<choice>:<trail>`` (the choice prefixed with ``c`` on a
    card that changes an earlier vote)."""
    idea, code, trail = args
    if code in deck.CHOICES:
        choice, change = deck.CHOICES[code], False
    elif code in deck.CHANGES:
        choice, change = deck.CHANGES[code], True
    else:
        raise DomainError("unknown_button")
    place = deck.DeckPlace(deck.decode_trail(trail), change)
    return c.CastBallot(ctx, rid, ref_number(idea), choice, place)


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
    c.CastBallot,
    phases=VOTE_PHASES,
    who=Who.MEMBER,
    button=Button("v", 3, build=_ballot, card="replace"),
    batched=True,
)
@cap.command(
    c.RateIdea,
    phases=VOTE_PHASES,
    who=Who.MEMBER,
    button=Button("rate", 1),
    form=FormDef("rate", _rate_fields, _rate_command),
    batched=True,
)
async def apply_ballots(u: Unit, commands: list[Ballot]) -> list[Message | None]:
    """Validate and store a batch of ballots in one transaction. Each refused ballot gets its own
    answer; the others are stored. The rule is the registered one (vote phase, joined). A vote from
    the deck is answered with the voter's next card (computed after the batch's writes); others
    are confirmed privately through the outbox."""
    # Deck votes need no inbox row: a repeated click on a card finds its vote already cast (or, on
    # a card that changes a vote, sets the same choice again), and a move writes nothing. Other
    # ballots claim their request id first: one another worker claimed is its retry, answered there.
    today = u.today()
    fresh = await claim_requests(
        u.s, [cmd.ctx.request_id for cmd in commands if cmd.ctx.request_id and not _from_deck(cmd)], today
    )
    gate = Gate(u)
    await gate.load(commands)
    # First the rule for every ballot, then one read of what the deck's voters already cast.
    admitted: list[tuple[RoundRow, str] | DomainError] = []
    for cmd in commands:
        try:
            rnd = await gate.admit(cmd)
            if cmd.idea not in await gate.released(rnd.id):
                raise DomainError("unknown_idea")
            admitted.append((rnd, u.keys.pseudonym(rnd.id, cmd.ctx.actor)))
        except DomainError as err:
            admitted.append(err)
    # The deck voters' votes as they stand, then with this batch's: what their next cards go by.
    standing = await _standing_votes(
        u, [a for cmd, a in zip(commands, admitted, strict=True) if _from_deck(cmd) and isinstance(a, tuple)]
    )
    votes: dict[tuple[str, int, str], dict[str, Any]] = {}
    ratings: dict[tuple[str, int, str], dict[str, Any]] = {}
    answers: list[Ask | Message | None] = []
    for cmd, admission in zip(commands, admitted, strict=True):
        ctx = cmd.ctx
        place = cmd.deck if isinstance(cmd, c.CastBallot) else None
        retry = False
        if place is None and ctx.request_id:
            retry = ctx.request_id not in fresh  # handled before, elsewhere, or earlier in this batch
            fresh.discard(ctx.request_id)
        if isinstance(admission, DomainError):
            if place is not None:
                answers.append(refusal(admission, await _round_or_none(gate, cmd)))
            elif not retry:
                u.reply(PromptKey.ERROR, {"code": admission.code, **admission.params}, to=ctx)
                answers.append(None)
            else:
                answers.append(None)
            continue
        rnd, voter = admission
        key = (rnd.id, cmd.idea, voter)
        if place is not None:
            assert isinstance(cmd, c.CastBallot)
            trail = deck.push(place.trail, cmd.idea)
            if not place.change and (key in votes or cmd.idea in standing[(rnd.id, voter)]):
                # A double click, a stale card, a retry: the vote stands as it was stored.
                answers.append(Ask(rnd, voter, cmd.idea, None, trail, notice("already", cmd.idea)))
                continue
            votes[key] = {"choice": cmd.choice}
            kind = "changed" if place.change else "recorded"
            answers.append(Ask(rnd, voter, cmd.idea, None, trail, notice(kind, cmd.idea)))
            continue
        answers.append(None)
        if retry:
            continue  # a platform retry of a click already stored
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
    await _upsert(u, votes, ratings)
    for (rid, idea, voter), vote in votes.items():
        if (rid, voter) in standing:
            standing[(rid, voter)][idea] = vote["choice"]
    return await answer_cards(u, gate, answers, standing)


def _from_deck(cmd: Ballot) -> bool:
    return isinstance(cmd, c.CastBallot) and cmd.deck is not None


async def _round_or_none(gate: Gate, cmd: Ballot) -> RoundRow | None:
    try:
        return await gate.round(cmd)
    except DomainError:
        return None


# Built once (a click's statements are its hottest Python): the deck voters' standing votes, and
# the ballots' upserts per dialect. Core statements on the table, not ORM bulk inserts.
STANDING_VOTES = select(
    BallotRow.round_id, BallotRow.idea_number, BallotRow.voter_key, BallotRow.choice
).where(
    BallotRow.round_id.in_(bindparam("rounds", expanding=True)),
    BallotRow.voter_key.in_(bindparam("voters", expanding=True)),
    BallotRow.choice.is_not(None),
)
_UPSERTS: dict[str, tuple[Any, Any]] = {}


def _upserts(dialect: str) -> tuple[Any, Any]:
    """(votes, ratings): INSERT ... ON CONFLICT DO UPDATE of a ballot's choice, or of its ratings."""
    if dialect not in _UPSERTS:
        table = BallotRow.__table__
        conflict = [table.c.round_id, table.c.idea_number, table.c.voter_key]
        votes = dialect_insert(dialect)(table)
        votes = votes.on_conflict_do_update(index_elements=conflict, set_={"choice": votes.excluded.choice})
        ratings = dialect_insert(dialect)(table)
        ratings = ratings.on_conflict_do_update(
            index_elements=conflict,
            set_={
                "urgency": func.coalesce(ratings.excluded.urgency, table.c.urgency),
                "impact": func.coalesce(ratings.excluded.impact, table.c.impact),
            },
        )
        _UPSERTS[dialect] = (votes, ratings)
    return _UPSERTS[dialect]


async def _standing_votes(
    u: Unit, admitted: list[tuple[RoundRow, str]]
) -> defaultdict[tuple[str, str], dict[int, str]]:
    """(round, voter) -> {idea: choice} for the deck's voters in this batch, before it is written."""
    out: defaultdict[tuple[str, str], dict[int, str]] = defaultdict(dict)
    if not admitted:
        return out
    for rnd, voter in admitted:
        out.setdefault((rnd.id, voter), {})  # a voter with no vote yet is known too
    rows = await u.s.execute(
        STANDING_VOTES,
        {"rounds": padded(rnd.id for rnd, _ in admitted), "voters": padded(voter for _, voter in admitted)},
    )
    for rid, idea, voter, choice in rows:
        if (rid, voter) in out:
            out[(rid, voter)][int(idea)] = str(choice)
    return out


async def _upsert(
    u: Unit,
    votes: dict[tuple[str, int, str], dict[str, Any]],
    ratings: dict[tuple[str, int, str], dict[str, Any]],
) -> None:
    upsert_votes, upsert_ratings = _upserts(u.s.get_bind().dialect.name)
    if votes:
        rows = [
            {"id": new_id(), "round_id": r, "idea_number": i, "voter_key": v, "choice": d["choice"]}
            for (r, i, v), d in sorted(votes.items())  # one order: concurrent batches never deadlock
        ]
        await u.s.execute(upsert_votes, rows)
    if ratings:
        rows = [
            {"id": new_id(), "round_id": r, "idea_number": i, "voter_key": v, "choice": None, **d}
            for (r, i, v), d in sorted(ratings.items())
        ]
        await u.s.execute(upsert_ratings, rows)


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
        await u.s.scalars(
            select(IdeaRow)
            .where(IdeaRow.round_id == rnd.id, IdeaRow.status == "released")  # not the removed ones
            .order_by(IdeaRow.number)
        )
    )
    ballots = list(await u.s.scalars(select(BallotRow).where(BallotRow.round_id == rnd.id)))
    numbers = {i.number for i in ideas}
    ballots = [b for b in ballots if b.idea_number in numbers]
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
    items = [
        {
            "rank": r.rank,
            "label": r.idea,
            "preview": preview(by_number[r.idea].text, RESULT_PREVIEW_CHARS),
            "agree": r.agree,
            "disagree": r.disagree,
            "pass": r.passes,
            "score": round(r.score * 100),
            "common_ground": r.common_ground,
            "divisive": r.divisive,
            **sector_figures(r, declarable, rnd.settings["sector_min_voters"]),
            "urgency": by_number[r.idea].urgency,
            "impact": by_number[r.idea].impact,
        }
        for r in results
    ]

    def goal_buttons(chunk: Sequence[Mapping[str, Any]]) -> list[ButtonSpec]:
        return [
            button(rnd.id, "goal", i["label"], label="make_goal", params={"label": i["label"]}) for i in chunk
        ]

    await u.post_list(header, PromptKey.RESULTS_LIST, items, RESULTS_PER_MESSAGE, goal_buttons)
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
