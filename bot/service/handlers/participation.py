"""Participation: join (the charter), contribute anonymously, see and withdraw one's own ideas, and
the release of every idea, shuffled and unnamed, when voting opens."""

from __future__ import annotations

from sqlalchemy import delete, select

from bot.domain import commands as c
from bot.domain import rules, validation
from bot.domain.anonymity import release_plan
from bot.domain.errors import DomainError
from bot.domain.events import PhaseEntered
from bot.domain.phases import OPEN_PHASES, Phase
from bot.domain.rules import Who
from bot.forms import FormField, Option
from bot.ids import new_id
from bot.messages import Message, Part
from bot.persistence.tables import IdeaRow, ParticipantRow, RoundRow
from bot.prompts import PromptKey
from bot.service import queries
from bot.service.registry import Button, Capability, FormDef, FormInput, Text
from bot.service.unit import Unit, button

cap = Capability("participation")


async def mine(u: Unit, rnd: RoundRow) -> list[IdeaRow]:
    """The actor's ideas not yet released (recognised by the round key, never by a stored id)."""
    return await queries.pending_ideas_by(u.s, rnd.id, u.pseudonym())


# --- join -------------------------------------------------------------------------------------


async def _not_yet_joined(u: Unit) -> None:
    if await queries.participant(u.s, u.round.id, u.actor.actor) is not None:
        raise DomainError("already_joined")


async def _join_fields(u: Unit, _arg: str | None) -> tuple[tuple[FormField, ...], str]:
    rnd = u.round
    sectors = tuple(Option(x, u.label("sectors", x)) for x in rnd.settings["sectors"])
    fields = (FormField("sector", u.label("fields", "sector"), "select", required=False, options=sectors),)
    return fields, u.render(PromptKey.CHARTER, {"title": rnd.title, "purpose": rnd.purpose})


def _join_command(f: FormInput) -> c.JoinRound:
    return c.JoinRound(f.ctx, validation.sector_from_form(f.values, f.settings["sectors"]), f.round_id)


@cap.command(
    c.JoinRound,
    phases=OPEN_PHASES,
    guard=_not_yet_joined,
    text=Text("join"),
    button=Button("join"),
    form=FormDef("join", _join_fields, _join_command),
)
async def join(u: Unit, cmd: c.JoinRound) -> None:
    ctx, rnd = u.actor, u.round
    u.s.add(
        ParticipantRow(
            id=new_id(),
            round_id=rnd.id,
            platform=ctx.actor.platform.value,
            workspace_id=ctx.actor.workspace_id,
            user_id=ctx.actor.user_id,
            sector=cmd.sector,
        )
    )
    buttons = [button(rnd.id, "contribute", style="primary")] if rnd.phase == Phase.CONTRIBUTE else []
    u.reply(PromptKey.JOINED, {"title": rnd.title, "phase": rnd.phase}, buttons)


# --- contribute -------------------------------------------------------------------------------


async def _quota_left(u: Unit) -> None:
    rules.check_quota(len(await mine(u, u.round)), u.round.settings["per_participant"])


async def _contribute_fields(u: Unit, _arg: str | None) -> tuple[tuple[FormField, ...], str]:
    st = u.round.settings
    field = FormField(
        "text", u.label("fields", "idea"), "long", min_length=st["min_chars"], max_length=st["max_chars"]
    )
    intro = u.render(PromptKey.CONTRIBUTE_INTRO, {"purpose": u.round.purpose, "max": st["max_chars"]})
    return (field,), intro


def _contribute_command(f: FormInput) -> c.Contribute:
    st = f.settings
    text = validation.contribution_from_form(f.values, min_len=st["min_chars"], max_len=st["max_chars"])
    return c.Contribute(f.ctx, text, f.round_id)


@cap.command(
    c.Contribute,
    phases=(Phase.CONTRIBUTE,),
    who=Who.MEMBER,
    guard=_quota_left,
    # Slash-command text can show up in the channel and in exports; only the form is private.
    text=Text("contribute", refuse_typed="text_in_channel"),
    button=Button("contribute"),
    form=FormDef("contribute", _contribute_fields, _contribute_command),
)
async def contribute(u: Unit, cmd: c.Contribute) -> None:
    rnd = u.round
    already = len(await mine(u, rnd))
    u.s.add(IdeaRow(id=new_id(), round_id=rnd.id, author_key=u.pseudonym(), text=cmd.text, status="pending"))
    # Deliberately no echo of the text: the private reply is a row too, until it is delivered.
    params = {"count": already + 1, "limit": rnd.settings["per_participant"]}
    u.reply(PromptKey.CONTRIBUTION_RECORDED, params, [button(rnd.id, "mine")])


@cap.command(
    c.ListMine,
    phases=(Phase.CONTRIBUTE,),
    who=Who.MEMBER,
    text=Text("mine", build=lambda ctx, _rest: c.ListMine(ctx)),
    button=Button("mine", build=lambda ctx, rid, _args: c.ListMine(ctx, rid)),
)
async def list_mine(u: Unit, cmd: c.ListMine) -> None:
    rnd = u.round
    ideas = await mine(u, rnd)
    parts = [
        Part(PromptKey.CONTRIBUTIONS_MINE, {"count": len(ideas), "limit": rnd.settings["per_participant"]})
    ]
    for idea in ideas:
        withdraw = button(rnd.id, "wd", idea.id, label="withdraw", style="danger")
        parts.append(Part(PromptKey.RELEASE_IDEA, {"label": None, "text": idea.text}, (withdraw,)))
    u.reply_message(Message(tuple(parts)))


@cap.command(
    c.Withdraw,
    phases=(Phase.CONTRIBUTE,),
    button=Button("wd", 1, build=lambda ctx, rid, args: c.Withdraw(ctx, rid, args[0])),
)
async def withdraw(u: Unit, cmd: c.Withdraw) -> None:
    rnd = u.round
    result = await u.s.execute(
        delete(IdeaRow).where(
            IdeaRow.id == cmd.idea_id,
            IdeaRow.round_id == rnd.id,
            IdeaRow.status == "pending",
            IdeaRow.author_key == u.pseudonym(),
        )
    )
    if getattr(result, "rowcount", 0) != 1:
        raise DomainError("not_yours_or_gone")
    u.reply(PromptKey.CONTRIBUTION_WITHDRAWN)


# --- release ----------------------------------------------------------------------------------


@cap.on(PhaseEntered, target=Phase.VOTE)
async def release(u: Unit, event: PhaseEntered) -> None:
    """Show every contribution at once, shuffled, as "Idea n", with no author or origin.

    Rows are rewritten in the shuffled order with fresh random ids, so neither row order (SQLite
    rowid, PostgreSQL heap order) nor ids tell the order of submission."""
    rnd = u.round
    pending = await u.s.scalars(
        select(IdeaRow.text).where(IdeaRow.round_id == rnd.id, IdeaRow.status == "pending")
    )
    plan = release_plan(list(pending), u.rng)
    await u.s.execute(delete(IdeaRow).where(IdeaRow.round_id == rnd.id))
    await u.s.flush()
    for idea in plan:
        u.s.add(
            IdeaRow(
                id=new_id(),
                round_id=rnd.id,
                author_key=None,
                text=idea.text,
                status="released",
                number=idea.number,
            )
        )
    await u.s.flush()
    header = Part(PromptKey.RELEASE_HEADER, {"count": len(plan), "title": rnd.title})
    cards = [
        Part(
            PromptKey.RELEASE_IDEA,
            {"label": idea.number, "text": idea.text},
            (
                button(rnd.id, "v", idea.number, "a", label="agree", style="primary"),
                button(rnd.id, "v", idea.number, "d", label="disagree", style="danger"),
                button(rnd.id, "v", idea.number, "p", label="pass"),
                button(rnd.id, "rate", idea.number, label="rate"),
            ),
        )
        for idea in plan
    ]
    await u.post_chunked(header, cards)


@cap.on(PhaseEntered, target=Phase.CANCELLED)
async def drop_unreleased(u: Unit, event: PhaseEntered) -> None:
    """Ideas nobody saw are deleted with a cancelled round."""
    await u.s.execute(delete(IdeaRow).where(IdeaRow.round_id == event.round_id, IdeaRow.status == "pending"))
