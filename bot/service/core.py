"""The dialogue core's face to adapters: four calls, whatever the capability.

Adapters call :meth:`Convene.handle` (a command), :meth:`Convene.press` (a button),
:meth:`Convene.open_form` / :meth:`Convene.submit_form` (modals) and :meth:`Convene.refuse` (a
refusal decided at the edge). Everything else lives behind them: the registry of capabilities
(``bot/service/handlers``), the bus that runs each command in one transaction, and the domain rules.
Refusals become private replies; nothing is half-written, because a refusal rolls the whole
transaction back.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import AppConfig
from bot.domain.commands import Command, Context
from bot.domain.errors import DomainError, FormErrors
from bot.forms import Form
from bot.ids import ComponentId
from bot.keys import KeyStore
from bot.messages import Card
from bot.metrics import NO_METRICS, Metrics
from bot.ports import Clock
from bot.prompts import Prompts
from bot.refs import Platform
from bot.service import tenancy
from bot.service.bus import Bus
from bot.service.errors import ServiceUnavailable
from bot.service.handlers import build_registry
from bot.service.ingest import GroupCommit
from bot.service.registry import Registry
from bot.service.unit import RoundKeys, Services

__all__ = ["Convene", "ServiceUnavailable"]


class Convene:
    def __init__(
        self,
        config: AppConfig,
        sessions: async_sessionmaker[AsyncSession],
        keys: KeyStore,
        clock: Clock,
        prompts: Prompts,
        registry: Registry | None = None,
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.keys = keys
        self.clock = clock
        self.prompts = prompts
        self.registry = registry or build_registry()
        self.outbox_listeners: list[Callable[[], None]] = []
        self.services = Services(
            config, clock, prompts, RoundKeys(keys), secrets.SystemRandom(), self.registry
        )
        self.bus = Bus(self.registry, self.services, sessions, self.notify_outbox)
        self._metrics: Metrics = NO_METRICS

    @property
    def metrics(self) -> Metrics:
        """Where the core and the adapters count acks, batches and timers (``bot.metrics``)."""
        return self._metrics

    @metrics.setter
    def metrics(self, value: Metrics) -> None:
        self._metrics = value
        self.ingest.metrics = value

    @property
    def rng(self) -> random.Random:
        """Shuffles and join codes. Cryptographic by default; tests seed it for golden transcripts."""
        return self.services.rng

    @rng.setter
    def rng(self, value: random.Random) -> None:
        self.services.rng = value

    @property
    def ingest(self) -> GroupCommit:
        return self.bus.ingest

    def notify_outbox(self) -> None:
        for listener in self.outbox_listeners:
            listener()

    # --- entry points -------------------------------------------------------------------------

    async def handle(self, command: Command) -> None:
        """Run a command; a refusal becomes a private reply. Raises ServiceUnavailable only when
        storage itself fails."""
        error = await self.bus.run(command)
        ctx = command.ctx
        if error is not None and ctx is not None:
            await self._refusal(ctx, error, {}, inline=False)

    async def press(self, ctx: Context, action_id: str) -> Form | Card | None:
        """A button was pressed. Returns a form to open, a private card to show through the click
        itself (the voting deck: refusals come back as a card too), or None when the press was
        handled (its answer, if any, goes through the outbox)."""
        cid = ComponentId.decode(action_id)
        route = self.registry.verb(cid.verb) if cid is not None else None
        if cid is None or route is None or route.button is None or len(cid.args) != route.button.arity:
            await self.refuse(ctx, DomainError("unknown_button"))
            return None
        if route.button.build is None and route.form is not None:
            arg = cid.args[0] if cid.args else None
            return await self.open_form(ctx, route.form.name, round_id=cid.round_id, arg=arg)
        assert route.button.build is not None
        card = route.button.card
        try:
            command = route.button.build(ctx, cid.round_id, cid.args)
        except DomainError as err:
            if card is not None:
                return Card(self.bus.refusal(err), replace=card == "replace")
            await self.refuse(ctx, err)
            return None
        if card is not None:
            return Card(await self.bus.answer(command), replace=card == "replace")
        await self.handle(command)
        return None

    async def open_form(
        self, ctx: Context, name: str, *, round_id: str | None = None, arg: str | None = None
    ) -> Form | None:
        """The form for ``name``, or None after a private refusal (not joined, wrong phase...)."""
        try:
            return await self.bus.open_form(ctx, name, round_id, arg)
        except DomainError as err:
            await self.refuse(ctx, err)
            return None

    async def submit_form(
        self, ctx: Context, form_id: str, values: dict[str, str], *, inline_errors: bool = False
    ) -> dict[str, str]:
        """Handle a submitted form. With ``inline_errors`` (Slack modals) field problems come back
        as {field: message} for the adapter to show in the form, which keeps what was typed; without
        it they are sent privately, with the typed values repeated so nothing is lost."""
        cid = ComponentId.decode(form_id)
        if cid is None or cid.verb != "form" or not cid.args or len(cid.args) > 2:
            await self.refuse(ctx, DomainError("unknown_form"))
            return {}
        name, arg = cid.args[0], (cid.args[1] if len(cid.args) > 1 else None)
        rid = None if cid.round_id == "-" else cid.round_id
        error = await self.bus.submit(ctx, name, rid, arg, values)
        if error is None:
            return {}
        return await self._refusal(ctx, error, values, inline=inline_errors)

    async def workspace_removed(self, platform: Platform, workspace_id: str) -> None:
        """The workspace removed the app: its conversations take no more posts (`tenancy`)."""
        await tenancy.workspace_removed(self.sessions, platform, workspace_id)

    async def workspace_installed(self, platform: Platform, workspace_id: str) -> None:
        await tenancy.workspace_returned(self.sessions, platform, workspace_id)

    async def refuse(self, ctx: Context, error: DomainError) -> None:
        """A refusal decided at the edge (text in a channel, a DM, an unreadable payload)."""
        await self.bus.tell(ctx, error)

    async def _refusal(
        self, ctx: Context, error: DomainError, values: dict[str, str], *, inline: bool
    ) -> dict[str, str]:
        if isinstance(error, FormErrors):
            return await self.bus.form_errors(ctx, error, values, inline)
        await self.bus.tell(ctx, error)
        return {}
