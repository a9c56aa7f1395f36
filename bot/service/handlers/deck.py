"""The private voting deck: one idea at a time, on a card only the voter sees.

The "Vote" button on the round card and on each release post opens the deck (``OpenDeck``); each
card offers Agree / Disagree / Pass (``CastBallot`` with the card's place, in ``voting``), "Rate
urgency & impact", Skip and Back (``MoveInDeck``). Every button carries the round and the idea of
its card, so a click counts only for the idea on that card. Each click is answered with the next
card through the click itself (``bot.messages.Card``; never the outbox, never stored): on Slack
through the interaction's response_url, on Discord through the interaction callback. Deck commands
are batched (group commit) with ballots: the next card is computed in the batch's transaction, after
its ballots are written, and shown only once they are committed.

Where a person is comes from the database (their ballots, by pseudonym) and from the card clicked;
see ``bot/domain/deck.py`` for the order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, bindparam, func, select

from bot.domain import commands as c
from bot.domain import deck, rules
from bot.domain.errors import DomainError
from bot.domain.phases import Phase
from bot.domain.rules import Who
from bot.domain.validation import ref_number
from bot.messages import Message, Part
from bot.persistence.tables import BallotRow, ConversationRow, IdeaRow, ParticipantRow, RoundRow
from bot.prompts import PromptKey
from bot.service.queries import padded
from bot.service.registry import Button, Capability
from bot.service.unit import Unit, button

cap = Capability("deck")

VOTE_PHASES = (Phase.VOTE,)
PAST_VOTING = frozenset({Phase.GOALS, Phase.ACTIONS, Phase.CLOSED})
NONE = "-"
TEXTS_AT_ONCE = 4 * deck.WINDOW  # ideas whose texts are read with their vote counts, not after


# --- statements built once (each click only binds its values) --------------------------------


def _round_statement(*, member: bool) -> Select[Any]:
    """The round linked to a conversation, the highest number and the count of its released ideas,
    and (``member``) whether a person has joined it."""
    numbered = (IdeaRow.round_id == RoundRow.id, IdeaRow.status == "released")
    highest = select(func.max(IdeaRow.number)).where(*numbered).scalar_subquery()
    counted = select(func.count()).select_from(IdeaRow).where(*numbered).scalar_subquery()
    columns: list[Any] = [RoundRow, highest, counted]
    if member:
        joined = select(ParticipantRow.round_id).where(
            ParticipantRow.round_id == RoundRow.id,
            ParticipantRow.platform == bindparam("actor_platform"),
            ParticipantRow.workspace_id == bindparam("actor_workspace"),
            ParticipantRow.user_id == bindparam("actor_user"),
        )
        columns.append(joined.exists())
    return (
        select(*columns)
        .join(ConversationRow, ConversationRow.round_id == RoundRow.id)
        .where(
            RoundRow.id == bindparam("round_id"),
            ConversationRow.platform == bindparam("platform"),
            ConversationRow.workspace_id == bindparam("workspace_id"),
            ConversationRow.channel_id == bindparam("channel_id"),
        )
    )


def _votes_on() -> Any:
    """The number of votes on an idea (a correlated subquery)."""
    return (
        select(func.count())
        .select_from(BallotRow)
        .where(
            BallotRow.round_id == IdeaRow.round_id,
            BallotRow.idea_number == IdeaRow.number,
            BallotRow.choice.is_not(None),
        )
        .scalar_subquery()
    )


def _ideas_statement(*, text: bool) -> Select[Any]:
    """Released ideas of a round by number: each with its vote count, and (``text``) its text."""
    columns: list[Any] = [IdeaRow.number, _votes_on(), *([IdeaRow.text] if text else [])]
    return select(*columns).where(
        IdeaRow.round_id == bindparam("round_id"),
        IdeaRow.number.in_(bindparam("numbers", expanding=True)),
        IdeaRow.status == "released",
    )


def _deck_statement() -> Select[Any]:
    """Every released idea of a round: its vote count, its text and one voter's vote on it."""
    mine = select(BallotRow.choice).where(
        BallotRow.round_id == IdeaRow.round_id,
        BallotRow.idea_number == IdeaRow.number,
        BallotRow.voter_key == bindparam("voter"),
    )
    return select(IdeaRow.number, _votes_on(), IdeaRow.text, mine.scalar_subquery()).where(
        IdeaRow.round_id == bindparam("round_id"), IdeaRow.status == "released"
    )


ROUND = _round_statement(member=False)
WHOLE_DECK = _deck_statement()
ROUND_AND_MEMBER = _round_statement(member=True)
IDEAS = _ideas_statement(text=False)
IDEAS_AND_TEXTS = _ideas_statement(text=True)
VOTES_OF = select(BallotRow.voter_key, BallotRow.idea_number, BallotRow.choice).where(
    BallotRow.round_id == bindparam("round_id"),
    BallotRow.voter_key.in_(bindparam("voters", expanding=True)),
    BallotRow.choice.is_not(None),
)


# --- the rule, applied per command of a batch -------------------------------------------------


class Gate:
    """The declared rule of the batched voting routes (the round linked to the conversation, the
    vote phase, a member), applied per command so one refusal never fails the others; the roster
    and the rounds are read once per batch."""

    def __init__(self, u: Unit) -> None:
        self.u = u
        # Read once per batch, never kept longer: rosters change (an erasure), and so may a released
        # idea's text (a removal by the conveners).
        self.members: set[tuple[str, str, str, str]] = set()
        self.texts: dict[tuple[str, int], str] = {}
        self._rounds: dict[tuple[str, str, str, str], RoundRow | None] = {}
        self._released: dict[str, list[int]] = {}

    async def released(self, round_id: str) -> list[int]:
        """The numbers of the round's released ideas: 1..n as release numbers them, less those the
        conveners removed (read with the round, or once per batch)."""
        if round_id not in self._released:
            numbers = await self.u.s.scalars(
                select(IdeaRow.number).where(IdeaRow.round_id == round_id, IdeaRow.status == "released")
            )
            self._released[round_id] = sorted(int(n) for n in numbers if n is not None)
        return self._released[round_id]

    async def load(self, commands: Sequence[Any]) -> None:
        """Who of this batch has joined (one query, for those not known to have joined already)."""
        unknown = [cmd for cmd in commands if _member_key(cmd) not in self.members]
        if not unknown:
            return
        if len(unknown) == 1 and _round_key(unknown[0]) not in self._rounds:
            # A lone click (the usual case): its round and whether its sender joined, in one read.
            await self._read_round(unknown[0], member=True)
            return
        rows = await self.u.s.execute(
            select(
                ParticipantRow.round_id,
                ParticipantRow.platform,
                ParticipantRow.workspace_id,
                ParticipantRow.user_id,
            ).where(
                ParticipantRow.round_id.in_(padded(cmd.round_id for cmd in unknown)),
                ParticipantRow.user_id.in_(padded(cmd.ctx.actor.user_id for cmd in unknown)),
            )
        )
        for row in rows:
            self.members.add((row[0], row[1], row[2], row[3]))

    async def round(self, cmd: Any) -> RoundRow:
        """The command's round, which must be linked to the conversation the click came from."""
        key = _round_key(cmd)
        if key not in self._rounds:
            await self._read_round(cmd, member=False)
        rnd = self._rounds[key]
        if rnd is None:
            raise DomainError("round_gone")
        return rnd

    async def _read_round(self, cmd: Any, *, member: bool) -> None:
        """Read the command's round as linked to its conversation, with the highest and the count of
        its released ideas; with ``member``, also whether the command's sender has joined it."""
        key = _round_key(cmd)
        actor = cmd.ctx.actor
        where = {"round_id": cmd.round_id, "platform": key[1], "workspace_id": key[2], "channel_id": key[3]}
        if member:
            who = {"actor_platform": actor.platform.value, "actor_workspace": actor.workspace_id}
            where |= who | {"actor_user": actor.user_id}
        found = (await self.u.s.execute(ROUND_AND_MEMBER if member else ROUND, where)).first()
        self._rounds[key] = found[0] if found is not None else None
        if found is None:
            return
        if int(found[1] or 0) == int(found[2] or 0):
            # 1..n, none removed (otherwise ``released`` reads the numbers)
            self._released[found[0].id] = list(range(1, int(found[1] or 0) + 1))
        if member and found[3]:
            self.members.add(_member_key(cmd))

    def member(self, cmd: Any, rnd: RoundRow) -> None:
        actor = cmd.ctx.actor
        joined = (rnd.id, actor.platform.value, actor.workspace_id, actor.user_id) in self.members
        rules.check_who(Who.MEMBER, convener=False, joined=joined, round_title=rnd.title)

    async def admit(self, cmd: Any) -> RoundRow:
        """The round, once the command may act on it (raises DomainError)."""
        rnd = await self.round(cmd)
        rules.check_phase(rnd.phase, VOTE_PHASES)
        self.member(cmd, rnd)
        return rnd


def _round_key(cmd: Any) -> tuple[str, str, str, str]:
    where = cmd.ctx.where
    return (cmd.round_id, where.platform.value, where.workspace_id, where.channel_id)


def _member_key(cmd: Any) -> tuple[str, str, str, str]:
    actor = cmd.ctx.actor
    return (cmd.round_id, actor.platform.value, actor.workspace_id, actor.user_id)


# --- cards ------------------------------------------------------------------------------------


@dataclass
class Ask:
    """One card to compute: for ``voter`` in ``rnd``, the idea ``show`` (Back) or the next one after
    ``after``; ``notice`` goes on top (a vote recorded, changed, or already there)."""

    rnd: RoundRow
    voter: str
    after: int | None = None
    show: int | None = None
    trail: tuple[int, ...] = ()
    notice: Part | None = None
    skip: bool = False


def notice(kind: str, idea: int) -> Part:
    return Part(PromptKey.DECK_NOTICE, {"kind": kind, "label": idea})


def refusal(err: DomainError, rnd: RoundRow | None = None) -> Message:
    """A deck click that cannot count: voting has closed, or the error itself, on the card."""
    if rnd is not None and rnd.phase in PAST_VOTING and err.code in ("round_over", "wrong_phase"):
        return Message((Part(PromptKey.DECK_CLOSED, {"title": rnd.title, "phase": rnd.phase}),))
    return Message((Part(PromptKey.ERROR, {"code": err.code, **err.params}),))


@dataclass
class _RoundView:
    released: list[int] = field(default_factory=list)
    counts: dict[int, int] = field(default_factory=dict)
    votes: dict[str, dict[int, str]] = field(default_factory=lambda: defaultdict(dict))
    whole: bool = False  # every released idea's count and text read already


async def _read_whole_deck(
    u: Unit, rid: str, voter: str, view: _RoundView, texts: dict[tuple[str, int], str]
) -> None:
    released = set(view.released)
    rows = await u.s.execute(WHOLE_DECK, {"round_id": rid, "voter": voter})
    mine = view.votes[voter]
    for number, count, text, choice in rows:
        if number is None or int(number) not in released:
            continue
        n = int(number)
        if count:
            view.counts[n] = int(count)
        texts[(rid, n)] = text
        if choice:
            mine[n] = str(choice)
    view.whole = True


async def answer_cards(
    u: Unit,
    gate: Gate,
    asks: Sequence[Ask | Message | None],
    known: Mapping[tuple[str, str], Mapping[int, str]] | None = None,
) -> list[Message | None]:
    """Every card of a batch, read in its transaction (after its ballots were written): per round,
    the released ideas and their vote counts; per voter, their votes (``known``: (round, voter) ->
    votes the caller already holds, as they stand now). Anything else passes through."""
    views: dict[str, _RoundView] = {}
    by_round: dict[str, set[str]] = defaultdict(set)
    for ask in asks:
        if isinstance(ask, Ask):
            by_round[ask.rnd.id].add(ask.voter)
    for rid, voters in by_round.items():
        view = views[rid] = _RoundView(released=await gate.released(rid))
        released = set(view.released)
        for voter in list(voters):
            if known is not None and (rid, voter) in known:
                view.votes[voter] = {n: c for n, c in known[(rid, voter)].items() if n in released}
                voters.discard(voter)
        if not voters:
            continue
        if len(voters) == 1 and len(view.released) <= TEXTS_AT_ONCE:
            # One voter in a small deck (a lone Back, Skip or Open): their votes, every idea's count
            # and text in one read.
            (voter,) = voters
            await _read_whole_deck(u, rid, voter, view, gate.texts)
            continue
        mine = await u.s.execute(VOTES_OF, {"round_id": rid, "voters": padded(voters)})
        for voter, number, choice in mine:
            if number in released and choice:
                view.votes[voter][number] = str(choice)
    # One read per round: the vote counts of the ideas a next card is chosen from (a few per card)
    # and, unless the batch wants many, the texts of those and of the ideas Back shows.
    wanted: dict[str, set[int]] = defaultdict(set)
    shows: dict[str, set[int]] = defaultdict(set)
    for ask in asks:
        if isinstance(ask, Ask):
            view = views[ask.rnd.id]
            if ask.show is not None:
                shows[ask.rnd.id].add(ask.show)
                continue
            order = deck.personal_order(ask.voter, view.released)
            wanted[ask.rnd.id].update(deck.window(order, view.votes[ask.voter], ask.after, skip=ask.skip))
    texts = gate.texts
    for rid in wanted.keys() | shows.keys():
        if views[rid].whole:
            continue
        numbers = wanted[rid] | shows[rid]
        with_text = len(numbers) <= TEXTS_AT_ONCE
        rows = await u.s.execute(
            IDEAS_AND_TEXTS if with_text else IDEAS, {"round_id": rid, "numbers": padded(numbers)}
        )
        counts = views[rid].counts
        for row in rows:
            if row[0] is None:
                continue
            n = int(row[0])
            if n in wanted[rid] and row[1]:
                counts[n] = int(row[1])
            if with_text:
                texts[(rid, n)] = row[2]
    plans: list[deck.CardPlan | Message | None] = []
    shown: dict[str, set[int]] = defaultdict(set)
    for ask in asks:
        if not isinstance(ask, Ask):
            plans.append(ask)
            continue
        view = views[ask.rnd.id]
        plan: deck.CardPlan = deck.plan_card(
            ask.voter,
            view.released,
            view.votes[ask.voter],
            view.counts,
            after=ask.after,
            skip=ask.skip,
            show=ask.show,
            trail=ask.trail,
        )
        plans.append(plan)
        if plan.idea is not None:
            shown[ask.rnd.id].add(plan.idea)
    for rid, numbers in shown.items():
        missing = [n for n in numbers if (rid, n) not in texts]
        if not missing:
            continue
        rows = await u.s.execute(
            select(IdeaRow.number, IdeaRow.text).where(
                IdeaRow.round_id == rid, IdeaRow.number.in_(padded(missing)), IdeaRow.status == "released"
            )
        )
        for n, t in rows:
            if n is not None:
                texts[(rid, int(n))] = t
    out: list[Message | None] = []
    for ask, planned in zip(asks, plans, strict=True):
        if not isinstance(planned, deck.CardPlan):
            out.append(planned)
            continue
        assert isinstance(ask, Ask)
        text = texts.get((ask.rnd.id, planned.idea or 0), "")
        out.append(card_message(ask.rnd, planned, text, ask.notice))
    return out


def card_message(rnd: RoundRow, plan: deck.CardPlan, text: str, top: Part | None) -> Message:
    trail = deck.encode_trail(plan.trail)
    parts = [top] if top is not None else []
    if plan.idea is None:
        buttons = []
        if plan.trail:
            buttons.append(button(rnd.id, "dk", NONE, "b", trail, label="back"))
        if rnd.settings.get("continuous_active"):
            buttons.append(button(rnd.id, "dk", NONE, "n", trail, label="check_new"))
        done: dict[str, Any] = {
            "total": plan.total,
            "continuous": bool(rnd.settings.get("continuous_active")),
        }
        parts.append(Part(PromptKey.DECK_DONE, done, tuple(buttons)))
        return Message(tuple(parts))
    n = plan.idea
    prefix = "c" if plan.current else ""
    buttons = [
        button(rnd.id, "v", n, f"{prefix}a", trail, label="agree", style="primary"),
        button(rnd.id, "v", n, f"{prefix}d", trail, label="disagree", style="danger"),
        button(rnd.id, "v", n, f"{prefix}p", trail, label="pass"),
        button(rnd.id, "rate", n, label="rate"),
        button(rnd.id, "dk", n, "s", trail, label="next" if plan.current else "skip"),
    ]
    if plan.trail:
        buttons.append(button(rnd.id, "dk", n, "b", trail, label="back"))
    params: dict[str, Any] = {
        "label": n,
        "text": text,
        "voted": plan.voted,
        "total": plan.total,
        "current": plan.current,
    }
    parts.append(Part(PromptKey.DECK_CARD, params, tuple(buttons)))
    return Message(tuple(parts))


# --- open, skip, back -------------------------------------------------------------------------


def _open(ctx: c.Context, rid: str, _args: tuple[str, ...]) -> c.OpenDeck:
    return c.OpenDeck(ctx, rid)


def _move(ctx: c.Context, rid: str, args: tuple[str, ...]) -> c.MoveInDeck:
    idea, move, trail = args
    if move not in deck.MOVES:
        raise DomainError("unknown_button")
    number = None if idea == NONE else ref_number(idea)
    return c.MoveInDeck(ctx, rid, number, deck.MOVES[move], deck.decode_trail(trail))


Move = c.OpenDeck | c.MoveInDeck


@cap.command(
    c.OpenDeck,
    phases=VOTE_PHASES,
    who=Who.MEMBER,
    button=Button("deck", 0, build=_open, card="new"),
    batched=True,
)
@cap.command(
    c.MoveInDeck,
    phases=VOTE_PHASES,
    who=Who.MEMBER,
    button=Button("dk", 3, build=_move, card="replace"),
    batched=True,
)
async def apply_moves(u: Unit, commands: list[Move]) -> list[Message | None]:
    """Open the deck, skip, go back or on: nothing is written, each gets its card."""
    gate = Gate(u)
    await gate.load(commands)
    asks: list[Ask | Message | None] = []
    for cmd in commands:
        rnd: RoundRow | None = None
        try:
            rnd = await gate.admit(cmd)
            voter = u.keys.pseudonym(rnd.id, cmd.ctx.actor)
            asks.append(_ask_for(cmd, rnd, voter, await gate.released(rnd.id)))
        except DomainError as err:
            asks.append(refusal(err, rnd))
    return await answer_cards(u, gate, asks)


def _ask_for(cmd: Move, rnd: RoundRow, voter: str, released: Collection[int]) -> Ask:
    if isinstance(cmd, c.OpenDeck):
        return Ask(rnd, voter)
    if cmd.idea is not None and cmd.idea not in released:
        raise DomainError("unknown_idea")
    if cmd.move == "back" and cmd.trail:
        return Ask(rnd, voter, show=cmd.trail[0], trail=cmd.trail[1:])
    if cmd.move == "skip" and cmd.idea is not None:
        return Ask(rnd, voter, after=cmd.idea, trail=deck.push(cmd.trail, cmd.idea), skip=True)
    return Ask(rnd, voter, after=cmd.idea, trail=cmd.trail)
