"""Participation: join (the charter), contribute anonymously, see and withdraw one's own ideas, and
the release of every idea, shuffled and unnamed, when voting opens."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, select, update

from bot.domain import commands as c
from bot.domain import moderation, rules, validation
from bot.domain.errors import DomainError
from bot.domain.events import PhaseEntered
from bot.domain.phases import OPEN_PHASES, Phase
from bot.domain.release import continuous_allowed, distinct_new, next_batch_at, preview, release_batch
from bot.domain.rules import Who
from bot.forms import FormField, Option
from bot.ids import new_id
from bot.messages import Message, Part
from bot.persistence.tables import AuthorMarkRow, IdeaRow, ParticipantRow, RoundRow, TimerRow
from bot.prompts import PromptKey
from bot.sanitize import comparison_key
from bot.service import queries
from bot.service.registry import Button, Capability, FormDef, FormInput, Text, Timer
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
    params = {
        "title": rnd.title,
        "purpose": rnd.purpose,
        "continuous": rnd.settings.get("continuous"),
        "premoderation": rnd.settings.get("premoderation"),
    }
    return fields, u.render(PromptKey.CHARTER, params)


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
    buttons = []
    if rnd.phase == Phase.CONTRIBUTE:
        buttons = [button(rnd.id, "contribute", style="primary")]
    elif rnd.phase == Phase.VOTE:
        buttons = [button(rnd.id, "deck", style="primary")]
    u.reply(PromptKey.JOINED, {"title": rnd.title, "phase": rnd.phase}, buttons)


# --- contribute -------------------------------------------------------------------------------


async def _ideas_open(u: Unit) -> None:
    """Ideas come in during the contribute phase, and while a continuous round votes."""
    rnd = u.round
    if rnd.phase == Phase.VOTE and not rnd.settings.get("continuous_active"):
        raise DomainError("wrong_phase", phase=rnd.phase, needed=[Phase.CONTRIBUTE.value])


async def _quota_left(u: Unit) -> None:
    """At most ``per_participant`` ideas waiting for release (released ones keep no author), and
    none from a person the conveners blocked in this round (recognised by the round key only)."""
    await _ideas_open(u)
    rnd = u.round
    mark = moderation.block_mark(u.keys.get(rnd.id), u.pseudonym())
    moderation.check_not_blocked(await queries.blocked(u.s, rnd.id, mark))
    rules.check_quota(len(await mine(u, rnd)), rnd.settings["per_participant"])


IDEA_PHASES = (Phase.CONTRIBUTE, Phase.VOTE)  # the vote phase only in continuous rounds (_ideas_open)


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
    phases=IDEA_PHASES,
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
    review = bool(rnd.settings.get("premoderation"))  # waits in the conveners' review list first
    status = moderation.REVIEW if review else "pending"
    u.s.add(IdeaRow(id=new_id(), round_id=rnd.id, author_key=u.pseudonym(), text=cmd.text, status=status))
    batch_min = None
    if rnd.phase == Phase.VOTE and not review:
        await u.s.flush()
        await schedule_batch(u, rnd)
        batch_min = rnd.settings["continuous"]["batch_min"]
    # Deliberately no echo of the text: the private reply is a row too, until it is delivered.
    params = {
        "count": already + 1,
        "limit": rnd.settings["per_participant"],
        "batch_min": batch_min,
        "review": review,
    }
    u.reply(PromptKey.CONTRIBUTION_RECORDED, params, [button(rnd.id, "mine")])


@cap.command(
    c.ListMine,
    phases=IDEA_PHASES,
    who=Who.MEMBER,
    guard=_ideas_open,
    text=Text("mine", build=lambda ctx, _rest: c.ListMine(ctx)),
    button=Button("mine", build=lambda ctx, rid, _args: c.ListMine(ctx, rid)),
)
async def list_mine(u: Unit, cmd: c.ListMine) -> None:
    rnd = u.round
    ideas = await mine(u, rnd)
    parts = [
        Part(PromptKey.CONTRIBUTIONS_MINE, {"count": len(ideas), "limit": rnd.settings["per_participant"]})
    ]
    for n, idea in enumerate(ideas, start=1):
        # Discord shows every button below all the text: each one names the idea it withdraws.
        withdraw = button(rnd.id, "wd", idea.id, label="withdraw", style="danger", params={"n": n})
        parts.append(Part(PromptKey.RELEASE_IDEA, {"label": None, "mine": n, "text": idea.text}, (withdraw,)))
    u.reply_message(Message(tuple(parts)))


@cap.command(
    c.Withdraw,
    phases=IDEA_PHASES,
    guard=_ideas_open,
    button=Button("wd", 1, build=lambda ctx, rid, args: c.Withdraw(ctx, rid, args[0])),
)
async def withdraw(u: Unit, cmd: c.Withdraw) -> None:
    rnd = u.round
    result = await u.s.execute(
        delete(IdeaRow).where(
            IdeaRow.id == cmd.idea_id,
            IdeaRow.round_id == rnd.id,
            IdeaRow.status.in_(queries.WAITING),
            IdeaRow.author_key == u.pseudonym(),
        )
    )
    if getattr(result, "rowcount", 0) != 1:
        raise DomainError("not_yours_or_gone")
    u.reply(PromptKey.CONTRIBUTION_WITHDRAWN)


# --- release ----------------------------------------------------------------------------------

RELEASE_PER_MESSAGE = 20  # ideas per public message: a compact numbered list and one "Vote" button
RELEASE_BATCH = "release_batch"  # the timer of a continuous round's next batch


@cap.on(PhaseEntered, target=Phase.VOTE)
async def release(u: Unit, event: PhaseEntered) -> None:
    """Show every contribution at once, shuffled, as "Idea n", with no author or origin; identical
    ideas once. A continuous round keeps taking ideas while it votes, if enough people joined."""
    rnd = u.round
    rule = rnd.settings.get("continuous")
    active = None
    if rule is not None:
        joined = await queries.count(u.s, ParticipantRow, ParticipantRow.round_id == rnd.id)
        active = continuous_allowed(joined, rule["min_participants"])
        rnd.settings = {**rnd.settings, "continuous_active": active}
        if active:  # the first batch: later ones keep the minimum interval from it
            u.s.add(_batch_timer(rnd, u.now(), "done"))
    await release_pending(u, rnd, batch=False, continuous=active)


async def release_pending(u: Unit, rnd: RoundRow, *, batch: bool, continuous: bool | None = None) -> int:
    """Release the ideas waiting: merged with identical ones (already shown, or in this release),
    shuffled, numbered after those already shown, and posted as a compact list.

    Rows are rewritten in the shuffled order with fresh random ids, so neither row order (SQLite
    rowid, PostgreSQL heap order) nor ids tell the order of submission."""
    waiting = list(
        await u.s.execute(
            select(IdeaRow.text, IdeaRow.author_key).where(
                IdeaRow.round_id == rnd.id, IdeaRow.status == "pending"
            )
        )
    )
    shown = list(
        await u.s.execute(
            select(IdeaRow.id, IdeaRow.text).where(IdeaRow.round_id == rnd.id, IdeaRow.status == "released")
        )
    )
    # Numbers taken by removed ideas stay taken.
    highest = await u.s.scalar(select(func.max(IdeaRow.number)).where(IdeaRow.round_id == rnd.id))
    plan = release_batch(
        [t for t, _ in waiting], u.rng, start=1 + int(highest or 0), shown=[t for _, t in shown]
    )
    await u.s.execute(delete(IdeaRow).where(IdeaRow.round_id == rnd.id, IdeaRow.status == "pending"))
    await u.s.flush()
    ids = {comparison_key(t): i for i, t in shown}
    for idea in plan.ideas:
        ids[comparison_key(idea.text)] = new_id()
        u.s.add(
            IdeaRow(
                id=ids[comparison_key(idea.text)],
                round_id=rnd.id,
                author_key=None,
                text=idea.text,
                status="released",
                number=idea.number,
            )
        )
    await u.s.flush()
    _mark_authors(u, rnd, [(ids[comparison_key(t)], a) for t, a in waiting if a is not None])
    if batch and not plan.ideas and not plan.merged:
        return 0
    params = {
        "count": len(plan.ideas),
        "title": rnd.title,
        "merged": plan.merged,
        "batch": batch,
        "continuous": continuous,
    }
    items = [{"label": idea.number, "preview": preview(idea.text)} for idea in plan.ideas]
    vote = [button(rnd.id, "deck", style="primary")]
    await u.post_list(
        Part(PromptKey.RELEASE_HEADER, params),
        PromptKey.RELEASE_LIST,
        items,
        RELEASE_PER_MESSAGE,
        lambda _: vote,
        slot=lambda chunk: release_slot(rnd.id, chunk[0]["label"]),
    )
    return len(plan.ideas)


def release_slot(round_id: str, first: int) -> str:
    """A release list message, named by its first idea's number (edited when one is removed)."""
    return f"release:{round_id}:{first}"


def _mark_authors(u: Unit, rnd: RoundRow, authored: list[tuple[str, str]]) -> None:
    """While voting runs, the conveners may remove a released idea and block whoever wrote it: each
    (idea, author) keeps a mark only the round key matches, in shuffled order, deleted when voting
    ends (``moderation.forget_marks``)."""
    if not authored:
        return
    key = u.keys.get(rnd.id)
    marks = [moderation.author_mark(key, subject, author) for subject, author in authored]
    rows = [(subject, mark) for (subject, _a), mark in zip(authored, marks, strict=True)]
    u.rng.shuffle(rows)
    for subject, mark in rows:
        u.s.add(AuthorMarkRow(id=new_id(), round_id=rnd.id, subject=subject, mark=mark))


async def schedule_batch(u: Unit, rnd: RoundRow) -> None:
    """After an idea arrives while a continuous round votes: once at least k different new ideas
    wait, the next batch is a timer, no sooner than the minimum interval after the last one and
    with a random delay (so a batch's time tells nothing about its last idea)."""
    rule = rnd.settings["continuous"]
    waiting_timer = await u.s.scalar(
        select(TimerRow.id).where(
            TimerRow.round_id == rnd.id, TimerRow.kind == RELEASE_BATCH, TimerRow.status == "pending"
        )
    )
    if waiting_timer is not None:
        return
    pending = list(
        await u.s.scalars(select(IdeaRow.text).where(IdeaRow.round_id == rnd.id, IdeaRow.status == "pending"))
    )
    shown = list(
        await u.s.scalars(
            select(IdeaRow.text).where(IdeaRow.round_id == rnd.id, IdeaRow.status == "released")
        )
    )
    last = await u.s.scalar(
        select(func.max(TimerRow.due_at)).where(
            TimerRow.round_id == rnd.id, TimerRow.kind == RELEASE_BATCH, TimerRow.status == "done"
        )
    )
    due = next_batch_at(
        u.now(),
        waiting=distinct_new(pending, shown),
        batch_min=rule["batch_min"],
        last_release=last,
        min_interval=dt.timedelta(seconds=rule["interval_s"]),
        jitter=dt.timedelta(seconds=rule["jitter_s"]),
        rng=u.rng,
    )
    if due is not None:
        u.s.add(_batch_timer(rnd, due, "pending"))


def _batch_timer(rnd: RoundRow, due: dt.datetime, status: str) -> TimerRow:
    return TimerRow(
        id=new_id(), round_id=rnd.id, kind=RELEASE_BATCH, phase=Phase.VOTE.value, due_at=due, status=status
    )


@cap.command(
    c.ReleaseBatch,
    phases=(Phase.VOTE,),
    timer=Timer(RELEASE_BATCH, lambda t: c.ReleaseBatch(None, t.round_id or "")),
)
async def release_next_batch(u: Unit, cmd: c.ReleaseBatch) -> None:
    """A continuous round's batch is due: released if at least k different new ideas still wait
    (a withdrawal may have taken one back; the next idea schedules again)."""
    rnd = u.round
    rule = rnd.settings.get("continuous")
    if not rnd.settings.get("continuous_active") or rule is None:
        return
    pending = list(
        await u.s.scalars(select(IdeaRow.text).where(IdeaRow.round_id == rnd.id, IdeaRow.status == "pending"))
    )
    shown = list(
        await u.s.scalars(
            select(IdeaRow.text).where(IdeaRow.round_id == rnd.id, IdeaRow.status == "released")
        )
    )
    if distinct_new(pending, shown) >= rule["batch_min"]:
        await release_pending(u, rnd, batch=True)


@cap.on(PhaseEntered, source=Phase.VOTE)
async def close_ideas(u: Unit, event: PhaseEntered) -> None:
    """Voting is over: a continuous round's ideas still waiting are never shown (as the charter
    and the confirmation said), and no batch is due any more."""
    await u.s.execute(delete(IdeaRow).where(IdeaRow.round_id == event.round_id, IdeaRow.status == "pending"))
    await u.s.execute(
        update(TimerRow)
        .where(
            TimerRow.round_id == event.round_id, TimerRow.kind == RELEASE_BATCH, TimerRow.status == "pending"
        )
        .values(status="done")
    )


@cap.on(PhaseEntered, target=Phase.CANCELLED)
async def drop_unreleased(u: Unit, event: PhaseEntered) -> None:
    """Ideas nobody saw are deleted with a cancelled round."""
    await u.s.execute(delete(IdeaRow).where(IdeaRow.round_id == event.round_id, IdeaRow.status == "pending"))
