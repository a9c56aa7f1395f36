"""`/convene <subcommand> [args]` typed as text (Slack, Discord, console): one parser for every
adapter, reading the registry (it lists no subcommand of its own)."""

from __future__ import annotations

from bot.domain.commands import Context, Help
from bot.domain.errors import DomainError
from bot.forms import Form
from bot.sanitize import one_line
from bot.service.core import Convene


async def run_text(core: Convene, ctx: Context, text: str) -> Form | None:
    """Run what follows `/convene`. Returns a form to open, or None when handled (replies are queued)."""
    words = text.strip().split(maxsplit=1)
    sub = words[0].lower() if words else "help"
    rest = words[1].strip() if len(words) > 1 else ""
    route = core.registry.text(sub)
    if route is None or route.text is None:
        # Echoed back privately: canonical text, so no control or invisible character survives.
        await core.handle(Help(ctx, unknown=one_line(sub)[:40]))
        return None
    spec = route.text
    if spec.refuse_typed and rest:
        await core.refuse(ctx, DomainError(spec.refuse_typed))
        return None
    if spec.build is None and route.form is not None:
        arg = rest.split()[0] if rest and spec.arg else None
        return await core.open_form(ctx, route.form.name, arg=arg)
    assert spec.build is not None
    await core.handle(spec.build(ctx, rest))
    return None
