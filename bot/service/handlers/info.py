"""Status and help: where the round is, and what one can do here (read from the registry)."""

from __future__ import annotations

from bot.domain import commands as c
from bot.domain.phases import Phase
from bot.persistence.tables import ActionRow, GoalRow, IdeaRow, ParticipantRow
from bot.prompts import PromptKey
from bot.service import queries
from bot.service.registry import Capability, Text
from bot.service.unit import Unit

cap = Capability("info")


@cap.command(c.Status, text=Text("status", build=lambda ctx, _rest: c.Status(ctx)))
async def status(u: Unit, cmd: c.Status) -> None:
    rnd, ctx = u.round, u.actor
    me = await queries.participant(u.s, rnd.id, ctx.actor)
    mine = None
    if me is not None and rnd.phase == Phase.CONTRIBUTE:
        mine = len(await queries.pending_ideas_by(u.s, rnd.id, u.pseudonym()))
    params = {
        "title": rnd.title,
        "phase": rnd.phase,
        "deadline": queries.fmt_time(await queries.deadline(u.s, rnd)),
        "joined": me is not None,
        "mine": mine,
        "limit": rnd.settings["per_participant"],
        "participants": await queries.count(u.s, ParticipantRow, ParticipantRow.round_id == rnd.id),
        "ideas": await queries.count(u.s, IdeaRow, IdeaRow.round_id == rnd.id, IdeaRow.status == "released"),
        "goals": await queries.count(u.s, GoalRow, GoalRow.round_id == rnd.id),
        "actions": await queries.count(u.s, ActionRow, ActionRow.round_id == rnd.id),
        "convener": u.is_convener(),
    }
    u.reply(PromptKey.STATUS, params)


@cap.command(c.Help, in_round=False, text=Text("help", build=lambda ctx, _rest: c.Help(ctx)))
async def help_(u: Unit, cmd: c.Help) -> None:
    """Every subcommand the registry knows, so help can never miss one."""
    subcommands = [
        {
            "name": r.text.name,
            "arg": r.text.arg.name if r.text.arg else None,
            "required": bool(r.text.arg and r.text.arg.required),
        }
        for r in u.services.registry.subcommands()
        if r.text is not None
    ]
    u.reply(PromptKey.HELP, {"unknown": cmd.unknown, "subcommands": subcommands})
