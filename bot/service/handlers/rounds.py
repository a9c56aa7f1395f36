"""Rounds and phases: start a round, link channels to it, move it along, close or cancel it.

Entering a phase raises :class:`PhaseEntered`; what each phase does on entry (release, tally, goal
cards, the summary) lives in the capability it belongs to, as a reaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from sqlalchemy import select, update

from bot.config import AppConfig
from bot.domain import commands as c
from bot.domain import rules, validation
from bot.domain.errors import DomainError
from bot.domain.events import ChannelLinked, PhaseEntered
from bot.domain.phases import OPEN_PHASES, Phase, can_transition
from bot.domain.rules import Who
from bot.forms import FormField, Option
from bot.ids import new_id
from bot.messages import Message, Part
from bot.persistence.tables import ConversationRow, GoalRow, IdeaRow, ParticipantRow, RoundRow, TimerRow
from bot.prompts import PromptKey
from bot.service import queries
from bot.service.outbox import public_row
from bot.service.registry import Arg, Capability, FormDef, FormInput, Text, Timer
from bot.service.unit import Unit, button

cap = Capability("rounds")

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def card_slot(round_id: str) -> str:
    return f"card:{round_id}"


async def round_card(u: Unit, rnd: RoundRow) -> Message:
    deadline = await queries.deadline(u.s, rnd)
    participants = await queries.count(u.s, ParticipantRow, ParticipantRow.round_id == rnd.id)
    continuous = bool(rnd.settings.get("continuous_active"))
    buttons = tuple(
        button(rnd.id, verb, style="primary" if verb in ("join", "deck") else "default")
        for verb in rules.card_buttons(rnd.phase, continuous=continuous)
    )
    params = {
        "continuous": continuous,
        "title": rnd.title,
        "purpose": rnd.purpose,
        "phase": rnd.phase,
        "deadline": queries.fmt_time(deadline),
        "participants": participants,
        "per_participant": rnd.settings["per_participant"],
    }
    return Message((Part(PromptKey.ROUND_CARD, params, buttons),))


def schedule(u: Unit, rnd: RoundRow, phase: Phase) -> None:
    minutes = rnd.settings.get("minutes", {}).get(phase.value)
    if minutes:
        u.s.add(
            TimerRow(
                id=new_id(),
                round_id=rnd.id,
                kind=queries.PHASE_DEADLINE,
                phase=phase.value,
                due_at=u.now() + dt.timedelta(minutes=minutes),
                status="pending",
            )
        )


async def transition(u: Unit, rnd: RoundRow, target: Phase, *, idle_days: int | None = None) -> None:
    """The one way a round changes phase: the table allows it, the phase's deadline is done, every
    reaction to entering ``target`` runs here, and the round card shows the new phase."""
    source = Phase(rnd.phase)
    if not can_transition(source, target):
        raise DomainError("bad_transition", phase=source.value, target=target.value)
    await u.s.execute(
        update(TimerRow)
        .where(
            TimerRow.round_id == rnd.id,
            TimerRow.status == "pending",
            TimerRow.kind == queries.PHASE_DEADLINE,
        )
        .values(status="done")
    )
    rnd.phase = target.value
    rnd.phase_since = u.now()
    await u.emit(PhaseEntered(rnd.id, source, target, idle_days))
    schedule(u, rnd, target)
    await u.s.flush()
    await u.post(await round_card(u, rnd), slot=card_slot(rnd.id), round_id=rnd.id)


def _link_row(round_id: str, ctx: c.Context) -> ConversationRow:
    return ConversationRow(
        id=new_id(),
        round_id=round_id,
        platform=ctx.where.platform.value,
        workspace_id=ctx.where.workspace_id,
        channel_id=ctx.where.channel_id,
    )


# --- start ------------------------------------------------------------------------------------


async def _can_start_here(u: Unit) -> None:
    rules.check_audience(u.actor.audience)
    if await queries.round_here(u.s, u.actor.where) is not None:
        raise DomainError("round_already_here")


async def _can_link_here(u: Unit) -> None:
    rules.check_audience(u.actor.audience)


async def _start_fields(u: Unit, _arg: str | None) -> tuple[tuple[FormField, ...], str]:
    rc, label = u.config.rounds, u.label
    templates = tuple(Option(t, label("templates", t)) for t in rc.templates)
    fields = (
        FormField("title", label("fields", "title"), "text", max_length=200),
        FormField("purpose", label("fields", "purpose"), "long", max_length=2000),
        FormField(
            "template", label("fields", "template"), "select", options=templates, initial=rc.default_template
        ),
        FormField("contribute_minutes", label("fields", "contribute_minutes"), "number", required=False),
        FormField("vote_minutes", label("fields", "vote_minutes"), "number", required=False),
    )
    return fields, u.render(PromptKey.START_INTRO, {})


def _start_command(f: FormInput) -> c.StartRound:
    spec = validation.round_from_form(f.values, list(f.templates))
    return c.StartRound(f.ctx, spec.title, spec.purpose, spec.template, spec.minutes)


@cap.command(
    c.StartRound,
    who=Who.CONVENER,
    in_round=False,
    guard=_can_start_here,
    text=Text("start"),
    form=FormDef("start", _start_fields, _start_command),
)
async def start(u: Unit, cmd: c.StartRound) -> None:
    ctx, rc = u.actor, u.config.rounds
    template = cmd.template or rc.default_template
    defaults = rc.templates[template].phase_minutes
    minutes = {p.value: cmd.minutes.get(p.value) or defaults.for_phase(p) for p in OPEN_PHASES}
    rnd = RoundRow(
        id=new_id(),
        title=cmd.title,
        purpose=cmd.purpose,
        template=template,
        language=u.config.language,
        phase=Phase.CONTRIBUTE.value,
        join_code="".join(u.rng.choice(CODE_ALPHABET) for _ in range(8)),
        conveners=[ctx.actor.key()],
        phase_since=u.now(),
        settings={
            "min_chars": rc.min_contribution_chars,
            "max_chars": rc.max_contribution_chars,
            "per_participant": rc.contributions_per_participant,
            "sector_min_voters": rc.sector_min_voters,
            "sectors": list(rc.sectors),
            "minutes": minutes,
            **_continuous(u.config, template),
            **({"premoderation": True} if rc.templates[template].premoderation else {}),
        },
        key_destroyed=False,
    )
    u.s.add(rnd)
    await u.s.flush()  # no ORM relationships, so the round row goes first explicitly
    u.round = rnd
    conv = _link_row(rnd.id, ctx)
    u.s.add(conv)
    u.keys.create(rnd.id)
    schedule(u, rnd, Phase.CONTRIBUTE)
    await u.s.flush()
    await u.emit(ChannelLinked(rnd.id, conv.id))
    u.s.add(public_row(rnd.id, conv, await round_card(u, rnd), slot=card_slot(rnd.id)))
    u.reply(PromptKey.ROUND_STARTED, {"code": rnd.join_code})


def _continuous(config: AppConfig, template: str) -> dict[str, Any]:
    """A continuous template's batch rule, fixed for the round's life when it starts."""
    if not config.rounds.templates[template].continuous:
        return {}
    cc = config.rounds.continuous
    rule = {
        "batch_min": cc.batch_min,
        "interval_s": cc.min_interval_minutes * 60,
        "jitter_s": cc.jitter_minutes * 60,
        "min_participants": cc.min_participants,
    }
    return {"continuous": rule}


# --- link -------------------------------------------------------------------------------------


@cap.command(
    c.LinkRound,
    who=Who.CONVENER,
    in_round=False,
    guard=_can_link_here,
    text=Text("link", Arg("code", "str", required=True), build=lambda ctx, rest: c.LinkRound(ctx, rest)),
)
async def link(u: Unit, cmd: c.LinkRound) -> None:
    ctx = u.actor
    code = cmd.code.strip().upper()
    found = select(RoundRow).where(RoundRow.join_code == code)
    rnd = await u.s.scalar(found) if code.isalnum() and len(code) <= 16 else None
    if rnd is None or rnd.phase not in OPEN_PHASES:
        raise DomainError("unknown_code")
    tenants = await u.s.execute(
        select(ConversationRow.platform, ConversationRow.workspace_id).where(
            ConversationRow.round_id == rnd.id
        )
    )
    if not rules.may_link_from(
        {(p, w) for p, w in tenants}, (ctx.where.platform.value, ctx.where.workspace_id)
    ):
        raise DomainError("unknown_code")  # another organisation's round: as if there were none
    here = await queries.round_here(u.s, ctx.where)
    if here is not None:
        raise DomainError("already_linked" if here.id == rnd.id else "round_already_here")
    u.round = rnd
    if ctx.actor.key() not in rnd.conveners:  # recorded, so follow-up reaches them after close
        rnd.conveners = [*rnd.conveners, ctx.actor.key()]
    conv = _link_row(rnd.id, ctx)
    u.s.add(conv)
    await u.s.flush()
    await u.emit(ChannelLinked(rnd.id, conv.id))
    u.s.add(public_row(rnd.id, conv, await round_card(u, rnd), slot=card_slot(rnd.id)))
    u.reply(PromptKey.ROUND_LINKED, {"title": rnd.title})


# --- next, close, cancel ----------------------------------------------------------------------


async def _pin_phase(bus: Any, cmd: c.Advance) -> c.Advance:
    """ "next" means: move on from the phase the round is in *now*. Pinning it before the
    transaction makes two racing clicks (or a retry after a conflict) move it once."""
    if cmd.expected is None and cmd.ctx is not None:
        return replace(cmd, expected=await bus.phase_now(cmd.ctx, cmd.round_id))
    return cmd


def _confirm(u: Unit, rnd: RoundRow) -> None:
    """Every command gets a private answer (Discord waits for one after deferring)."""
    u.reply(PromptKey.PHASE_CHANGED, {"title": rnd.title, "phase": rnd.phase})


@cap.command(
    c.Advance,
    who=Who.CONVENER,
    prepare=_pin_phase,
    text=Text("next", build=lambda ctx, _rest: c.Advance(ctx)),
    timer=Timer(queries.PHASE_DEADLINE, lambda t: c.Advance(None, t.round_id, expected=t.phase)),
)
async def advance(u: Unit, cmd: c.Advance) -> None:
    rnd = u.round
    if cmd.expected is not None and rnd.phase != cmd.expected:
        return  # a late or duplicate timer, or a double click: already done
    target = rules.next_phase(rnd.phase)
    if cmd.ctx is not None:  # a convener's early "next"; a deadline moves on regardless
        # Ideas still waiting for the conveners' review would not be shown: they do not count.
        ideas = await queries.count(u.s, IdeaRow, IdeaRow.round_id == rnd.id, IdeaRow.status != "review")
        goals = await queries.count(u.s, GoalRow, GoalRow.round_id == rnd.id)
        rules.check_early_advance(Phase(rnd.phase), ideas=ideas, goals=goals)
    await transition(u, rnd, target)
    if cmd.ctx is not None:
        _confirm(u, rnd)


@cap.command(c.CloseRound, who=Who.CONVENER, text=Text("close", build=lambda ctx, _rest: c.CloseRound(ctx)))
async def close(u: Unit, cmd: c.CloseRound) -> None:
    rnd = u.round
    if not can_transition(Phase(rnd.phase), Phase.CLOSED):
        raise DomainError("cannot_close_yet", phase=rnd.phase)
    await transition(u, rnd, Phase.CLOSED)
    _confirm(u, rnd)


@cap.command(
    c.CancelRound,
    who=Who.CONVENER,
    text=Text("cancel", build=lambda ctx, _rest: c.CancelRound(ctx)),
    # The retention pass finds idle rounds; each is cancelled through here, with nobody behind it.
    timer=Timer(queries.IDLE_ROUND, lambda t: c.CancelRound(None, t.round_id, expected=t.phase)),
)
async def cancel(u: Unit, cmd: c.CancelRound) -> None:
    rnd = u.round
    if cmd.ctx is None:
        if rnd.phase != cmd.expected:
            return  # it moved on since it was found idle
        await transition(u, rnd, Phase.CANCELLED, idle_days=u.config.retention.idle_round_days)
        return
    await transition(u, rnd, Phase.CANCELLED)
    _confirm(u, rnd)


@cap.on(PhaseEntered, target=Phase.CANCELLED)
async def announce_cancel(u: Unit, event: PhaseEntered) -> None:
    rnd = u.round
    params = {"title": rnd.title, "idle_days": event.idle_days}
    await u.post(Message((Part(PromptKey.ROUND_CANCELLED, params),)), round_id=rnd.id)


@cap.on(PhaseEntered, target=(Phase.CLOSED, Phase.CANCELLED))
async def forget_the_key(u: Unit, event: PhaseEntered) -> None:
    """The round stops taking joiners, and its key is destroyed once this commits (so reactions
    running in this transaction can still use it, and a rolled-back close keeps the round usable)."""
    rnd = u.round
    rnd.join_code = None
    rnd.key_destroyed = True
    u.keys.shred_after_commit(u.s, rnd.id)
