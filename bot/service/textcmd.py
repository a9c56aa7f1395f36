"""`/convene <subcommand> [args]` typed as text (Slack, console): one parser for every adapter."""

from __future__ import annotations

from bot.domain.errors import DomainError
from bot.forms import Form
from bot.service import commands as c
from bot.service.core import Convene

FORMS = ("start", "join", "contribute", "goal", "action")
SUBCOMMANDS = (*FORMS, "status", "next", "close", "cancel", "link", "help", "mine")


async def run_text(core: Convene, ctx: c.Context, text: str) -> Form | None:
    """Run what follows `/convene`. Returns a form to open, or None when handled (replies are queued)."""
    words = text.strip().split(maxsplit=1)
    sub = words[0].lower() if words else "help"
    rest = words[1].strip() if len(words) > 1 else ""
    if sub == "contribute" and rest:
        # Slash-command text can show up in the channel and in exports; only the form is private.
        await _refuse(core, ctx, "text_in_channel")
        return None
    if sub in FORMS:
        return await core.open_form(
            ctx, sub, arg=rest.split()[0] if rest and sub in ("goal", "action") else None
        )
    if sub == "status":
        await core.handle(c.Status(ctx))
    elif sub == "next":
        await core.handle(c.Advance(ctx))
    elif sub == "close":
        await core.handle(c.CloseRound(ctx))
    elif sub == "cancel":
        await core.handle(c.CancelRound(ctx))
    elif sub == "link":
        await core.handle(c.LinkRound(ctx, rest))
    elif sub == "mine":
        await core.handle(c.ListMine(ctx))
    elif sub == "help":
        await core.handle(c.Help(ctx))
    else:
        await core.handle(c.Help(ctx, unknown=sub[:40]))
    return None


async def _refuse(core: Convene, ctx: c.Context, code: str) -> None:
    await core.refuse(ctx, DomainError(code))
