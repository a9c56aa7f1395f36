"""Moderation without unmasking: the conveners' private review list (pre-moderation), approve or
reject with a reason (the author is told privately, found by the round key alone), removal of a
released idea (its line in every release post edited in place, left out of the deck and the tally),
a per-round block of an idea's author, and a log that never names anyone.

Nobody is unmasked, by anyone: the conveners see text only; the marks that let the core reach an
author again are HMACs under the round key (``bot.domain.moderation``), deleted when voting ends.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update

from bot.domain import commands as c
from bot.domain import moderation as mod
from bot.domain import validation
from bot.domain.errors import DomainError
from bot.domain.events import PhaseEntered
from bot.domain.phases import Phase
from bot.domain.rules import Who
from bot.forms import FormField
from bot.ids import new_id
from bot.messages import Message, Part
from bot.persistence.tables import (
    AuthorMarkRow,
    BallotRow,
    BlockRow,
    IdeaRow,
    ModerationLogRow,
    OutboxRow,
    ParticipantRow,
    RoundRow,
)
from bot.prompts import PromptKey
from bot.refs import Platform, UserRef
from bot.service.handlers.participation import IDEA_PHASES, release_slot, schedule_batch
from bot.service.outbox import direct_row, linked_conversations, public_row
from bot.service.registry import Arg, Button, Capability, FormDef, FormInput, Text
from bot.service.unit import Unit, button

cap = Capability("moderation")

REVIEW_SHOWN = 5  # ideas in one review list (Discord shows five rows of buttons in a message)


def log(u: Unit, decision: mod.Decision, *, text: str = "", reason: str = "") -> None:
    """One line of the moderation log: the day, the decision, the reason, a hash of the text."""
    u.s.add(
        ModerationLogRow(
            id=new_id(),
            round_id=u.round.id,
            day=u.today(),
            decision=decision.value,
            reason=reason,
            text_hash=mod.text_hash(text) if text else "",
        )
    )


async def _roster(u: Unit, rnd: RoundRow) -> list[tuple[str, str]]:
    """(pseudonym, person key) of everyone who joined: the only way back to an author."""
    rows = await u.s.execute(
        select(ParticipantRow.platform, ParticipantRow.workspace_id, ParticipantRow.user_id).where(
            ParticipantRow.round_id == rnd.id
        )
    )
    people = [UserRef(Platform(p), w, user) for p, w, user in rows]
    return [(u.keys.pseudonym(rnd.id, ref), ref.key()) for ref in people]


# --- the review list ----------------------------------------------------------------------------


@cap.command(
    c.ReviewIdeas,
    phases=IDEA_PHASES,
    who=Who.CONVENER,
    text=Text("review", build=lambda ctx, _rest: c.ReviewIdeas(ctx)),
    button=Button("review", build=lambda ctx, rid, _args: c.ReviewIdeas(ctx, rid)),
)
async def review(u: Unit, cmd: c.ReviewIdeas) -> None:
    """Ideas waiting for review, text only, a few at a time (in an order that says nothing about
    when they came: their random ids)."""
    rnd = u.round
    waiting = list(
        await u.s.scalars(
            select(IdeaRow)
            .where(IdeaRow.round_id == rnd.id, IdeaRow.status == mod.REVIEW)
            .order_by(IdeaRow.id)
        )
    )
    shown = waiting[:REVIEW_SHOWN]
    header = Part(
        PromptKey.REVIEW_LIST,
        {
            "count": len(waiting),
            "shown": len(shown),
            "premoderation": bool(rnd.settings.get("premoderation")),
        },
    )
    parts = [header]
    for n, idea in enumerate(shown, start=1):
        buttons = (
            button(rnd.id, "mok", idea.id, label="approve", style="primary", params={"n": n}),
            button(rnd.id, "mrej", idea.id, label="reject", style="danger", params={"n": n}),
        )
        parts.append(Part(PromptKey.REVIEW_IDEA, {"n": n, "text": idea.text}, buttons))
    u.reply_message(Message(tuple(parts)))


async def _in_review(u: Unit, idea_id: str) -> IdeaRow:
    idea = await u.s.get(IdeaRow, idea_id)
    if idea is None or idea.round_id != u.round.id:
        raise DomainError("not_in_review")
    mod.check_in_review(idea.status)
    return idea


async def _decide(u: Unit, idea_id: str, status: str | None) -> None:
    """Take the idea out of review (``status``; None deletes it), only if it is still there: of two
    conveners deciding at once, the second is refused and writes nothing."""
    still = (IdeaRow.id == idea_id, IdeaRow.round_id == u.round.id, IdeaRow.status == mod.REVIEW)
    if status is None:
        result = await u.s.execute(delete(IdeaRow).where(*still).execution_options(synchronize_session=False))
    else:
        result = await u.s.execute(
            update(IdeaRow).where(*still).values(status=status).execution_options(synchronize_session=False)
        )
    if getattr(result, "rowcount", 0) != 1:
        raise DomainError("not_in_review")


@cap.command(
    c.ApproveIdea,
    phases=IDEA_PHASES,
    who=Who.CONVENER,
    button=Button("mok", 1, build=lambda ctx, rid, args: c.ApproveIdea(ctx, rid, args[0])),
)
async def approve(u: Unit, cmd: c.ApproveIdea) -> None:
    rnd = u.round
    idea = await _in_review(u, cmd.idea_id)
    await _decide(u, idea.id, "pending")  # released with the others, as any idea
    log(u, mod.Decision.APPROVED, text=idea.text)
    await u.s.flush()
    if rnd.phase == Phase.VOTE and rnd.settings.get("continuous_active"):
        await schedule_batch(u, rnd)
    u.reply(PromptKey.IDEA_APPROVED, {}, [button(rnd.id, "review", label="review_next")])


# --- reject, with a reason the author reads privately --------------------------------------------


async def _reject_fields(u: Unit, arg: str | None) -> tuple[tuple[FormField, ...], str]:
    idea = await _in_review(u, arg or "")
    field = FormField("reason", u.label("fields", "reason"), "long", max_length=mod.REASON_MAX)
    return (field,), u.render(PromptKey.REJECT_INTRO, {"text": idea.text})


def _reject_command(f: FormInput) -> c.RejectIdea:
    assert f.round_id is not None
    return c.RejectIdea(f.ctx, f.round_id, f.arg or "", validation.reason_from_form(f.values, mod.REASON_MAX))


@cap.command(
    c.RejectIdea,
    phases=IDEA_PHASES,
    who=Who.CONVENER,
    button=Button("mrej", 1),
    form=FormDef("reject", _reject_fields, _reject_command),
)
async def reject(u: Unit, cmd: c.RejectIdea) -> None:
    """The idea is deleted; its author alone is told why (found by the round key, through the
    roster); the conveners may block the author without learning who it is."""
    rnd = u.round
    idea = await _in_review(u, cmd.idea_id)
    await _decide(u, idea.id, None)
    case = new_id()  # what a block button names: this rejection
    if idea.author_key is not None:
        key = u.keys.get(rnd.id)
        u.s.add(
            AuthorMarkRow(
                id=new_id(), round_id=rnd.id, subject=case, mark=mod.author_mark(key, case, idea.author_key)
            )
        )
        for _p, person in mod.find_author([idea.author_key], await _roster(u, rnd), lambda p: p[0]):
            notice = Message(
                (Part(PromptKey.IDEA_REJECTED_NOTICE, {"title": rnd.title, "reason": cmd.reason}),)
            )
            u.s.add(direct_row(person, notice, rnd.id))
    log(u, mod.Decision.REJECTED, text=idea.text, reason=cmd.reason)
    buttons = [button(rnd.id, "mblk", case, label="block_author", style="danger")]
    u.reply(PromptKey.IDEA_REJECTED, {}, [*buttons, button(rnd.id, "review", label="review_next")])


# --- remove a released idea ----------------------------------------------------------------------


def _number(rest: str) -> int | None:
    text = rest.strip().removeprefix("#")
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


@cap.command(
    c.RemoveIdea,
    phases=(Phase.VOTE,),
    who=Who.CONVENER,
    text=Text(
        "remove", Arg("idea", "int", required=True), build=lambda ctx, rest: c.RemoveIdea(ctx, _number(rest))
    ),
)
async def remove(u: Unit, cmd: c.RemoveIdea) -> None:
    """A released idea's text is replaced by "removed by the conveners" in every release post (the
    post edited in place), its votes are dropped and it leaves the deck and the tally."""
    rnd = u.round
    idea = None
    if cmd.number is not None:
        idea = await u.s.scalar(
            select(IdeaRow).where(
                IdeaRow.round_id == rnd.id, IdeaRow.number == cmd.number, IdeaRow.status == "released"
            )
        )
    if idea is None:
        raise DomainError("unknown_idea")
    gone = await u.s.execute(
        update(IdeaRow)
        .where(IdeaRow.id == idea.id, IdeaRow.status == "released")
        .values(status=mod.REMOVED, text="")
        .execution_options(synchronize_session=False)
    )
    if getattr(gone, "rowcount", 0) != 1:
        raise DomainError("unknown_idea")  # removed by another convener a moment ago
    log(u, mod.Decision.REMOVED, text=idea.text)
    await u.s.execute(
        delete(BallotRow).where(BallotRow.round_id == rnd.id, BallotRow.idea_number == idea.number)
    )
    await _strike_release(u, rnd, idea.number or 0)
    buttons = [button(rnd.id, "mblk", idea.id, label="block_author", style="danger")]
    u.reply(PromptKey.IDEA_REMOVED, {"label": idea.number}, buttons)


async def _strike_release(u: Unit, rnd: RoundRow, number: int) -> None:
    """Edit, in each linked channel, the release post that lists ``number`` (its slot's newest body,
    with that line replaced), through the outbox like every post."""
    convs = {conv.id: conv for conv in await linked_conversations(u.s, rnd.id)}
    rows = await u.s.scalars(
        select(OutboxRow)
        .where(
            OutboxRow.round_id == rnd.id,
            OutboxRow.visibility == "public",
            OutboxRow.slot.startswith(release_slot(rnd.id, 0)[:-1], autoescape=True),
        )
        .order_by(OutboxRow.seq.desc())
    )
    seen: set[str] = set()
    for row in rows:
        if row.slot is None or row.slot in seen:
            continue
        seen.add(row.slot)
        base, _, conv_id = row.slot.rpartition(":")
        body = mod.strike(row.body, PromptKey.RELEASE_LIST.value, number)
        if body is None or conv_id not in convs:
            continue
        u.s.add(public_row(rnd.id, convs[conv_id], Message.from_json(body), slot=base))


# --- block an author for the round ---------------------------------------------------------------


@cap.command(
    c.BlockAuthor,
    phases=IDEA_PHASES,
    who=Who.CONVENER,
    button=Button("mblk", 1, build=lambda ctx, rid, args: c.BlockAuthor(ctx, rid, args[0])),
)
async def block(u: Unit, cmd: c.BlockAuthor) -> None:
    """Whoever wrote the rejected or removed idea can add no more ideas in this round. The round
    key finds them among the roster; nobody is told who it was."""
    rnd = u.round
    marks = list(
        await u.s.scalars(
            select(AuthorMarkRow.mark).where(
                AuthorMarkRow.round_id == rnd.id, AuthorMarkRow.subject == cmd.subject
            )
        )
    )
    key = u.keys.get(rnd.id) if marks else b""
    authors = mod.find_author(
        marks, await _roster(u, rnd) if marks else [], lambda p: mod.author_mark(key, cmd.subject, p[0])
    )
    if not authors:
        raise DomainError("author_not_found")
    blocked = set(await u.s.scalars(select(BlockRow.mark).where(BlockRow.round_id == rnd.id)))
    for pseudonym, _person in authors:
        mark = mod.block_mark(key, pseudonym)
        if mark not in blocked:
            blocked.add(mark)
            u.s.add(BlockRow(id=new_id(), round_id=rnd.id, mark=mark))
    log(u, mod.Decision.BLOCKED)
    u.reply(PromptKey.AUTHOR_BLOCKED, {})


# --- when voting ends ----------------------------------------------------------------------------


@cap.on(PhaseEntered, target=Phase.VOTE)
async def drop_unreviewed(u: Unit, event: PhaseEntered) -> None:
    """Voting opened (after the release): ideas still waiting for review are never shown, unless
    the round keeps taking ideas while it votes."""
    if not u.round.settings.get("continuous_active"):
        await u.s.execute(
            delete(IdeaRow).where(IdeaRow.round_id == event.round_id, IdeaRow.status == mod.REVIEW)
        )


@cap.on(PhaseEntered, target=(Phase.GOALS, Phase.CANCELLED))
async def forget_marks(u: Unit, event: PhaseEntered) -> None:
    """No idea can be added or removed any more: the marks and blocks go, and ideas still waiting
    for review with them."""
    rid = event.round_id
    await u.s.execute(delete(IdeaRow).where(IdeaRow.round_id == rid, IdeaRow.status == mod.REVIEW))
    await u.s.execute(delete(AuthorMarkRow).where(AuthorMarkRow.round_id == rid))
    await u.s.execute(delete(BlockRow).where(BlockRow.round_id == rid))


async def forget_person(u: Unit, rnd: RoundRow, pseudonym: str) -> int:
    """An erasure in an open round: the person's marks and block go (``retention._detach``)."""
    key = u.keys.get(rnd.id)
    subjects = set(await u.s.scalars(select(AuthorMarkRow.subject).where(AuthorMarkRow.round_id == rnd.id)))
    marks = [mod.author_mark(key, s, pseudonym) for s in subjects]
    gone = 0
    if marks:
        result = await u.s.execute(
            delete(AuthorMarkRow).where(AuthorMarkRow.round_id == rnd.id, AuthorMarkRow.mark.in_(marks))
        )
        gone += int(getattr(result, "rowcount", 0) or 0)
    result = await u.s.execute(
        delete(BlockRow).where(BlockRow.round_id == rnd.id, BlockRow.mark == mod.block_mark(key, pseudonym))
    )
    return gone + int(getattr(result, "rowcount", 0) or 0)
