"""The bus runs every command the same way, whatever route it came by (text, button, form, timer).

One transaction per command: the inbox (a platform retry is a no-op), the declared rule (phase, who,
guard: ``bot/domain/rules.py``), the handler, the reactions to the events it raised, and the outbox
rows they wrote all commit together, or nothing does. A conflict (two clicks racing on one round)
runs the command again on fresh state; a refusal becomes a private reply. The bus never names a
command class: it reads the registry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import event as sqla_event
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from bot.domain import rules
from bot.domain.commands import Command, Context
from bot.domain.errors import DomainError, FormErrors
from bot.domain.phases import OPEN_PHASES
from bot.domain.rules import Who
from bot.forms import Form
from bot.ids import ComponentId
from bot.keys import KeyUnavailable
from bot.messages import Message, Part
from bot.persistence.tables import OutboxRow, RoundRow
from bot.prompts import PromptKey
from bot.sanitize import canonical_text
from bot.service import queries
from bot.service.errors import ServiceUnavailable, is_db_error
from bot.service.ingest import GroupCommit, claim_requests
from bot.service.outbox import private_row
from bot.service.registry import DueTimer, FormInput, Registry, Route
from bot.service.unit import Services, Unit

log = logging.getLogger("convene.bus")

ATTEMPTS = 5  # conflicts retried before "busy, try again"


class Bus:
    def __init__(
        self,
        registry: Registry,
        services: Services,
        sessions: async_sessionmaker[AsyncSession],
        notify: Callable[[], None],
    ) -> None:
        self.registry = registry
        self.services = services
        self.sessions = sessions
        self.notify = notify
        ingest = services.config.ingest
        # The relay is woken by the batches that wrote outbox rows (see _apply_batch), not by every
        # batch: deck clicks write none, and a woken relay competes for SQLite's write lock.
        self.ingest = GroupCommit(
            sessions, self._apply_batch, lambda: None, ingest.batch_max, ingest.batch_wait_ms / 1000
        )

    def unit(self, session: AsyncSession, ctx: Context | None) -> Unit:
        return Unit(self.services, session, ctx, self.emit)

    async def emit(self, unit: Unit, event: Any) -> None:
        for reaction in self.registry.reactions_to(event):
            await reaction.run(unit, event)

    # --- commands -----------------------------------------------------------------------------

    async def run(self, command: Command) -> DomainError | None:
        """Run a command; returns the refusal (not yet told), or None when done."""
        route = self.registry.route(type(command))
        if route.batch is not None:
            await self.ingest.submit(command)
            return None
        if route.prepare is not None:
            command = await route.prepare(self, command)
        return await self._transact(
            command.ctx, route, getattr(command, "round_id", None), lambda _u: command
        )

    async def answer(self, command: Any) -> Any:
        """Run a batched command and return its handler's answer for it (the deck's next card),
        once its batch has committed: what is shown was stored."""
        route = self.registry.route(type(command))
        assert route.batch is not None, "only batched routes answer"
        return await self.ingest.submit(command)

    async def submit(
        self, ctx: Context, name: str, round_id: str | None, arg: str | None, values: Mapping[str, str]
    ) -> DomainError | None:
        """A submitted form: the same rule as when it opened, then its parser, then its handler."""
        route = self.registry.form(name)
        if route is None or route.form is None or (route.in_round and round_id is None):
            return DomainError("unknown_form")
        parse = route.form.parse
        if route.batch is not None:  # parsed here; the batch applies the rule per command
            try:
                command = parse(self._form_input(ctx, round_id, arg, values, {}))
            except DomainError as err:
                return err
            await self.ingest.submit(command)
            return None

        def make(u: Unit) -> Any:
            settings = u.round.settings if route.in_round else {}
            return parse(self._form_input(ctx, round_id, arg, values, settings))

        return await self._transact(ctx, route, round_id, make)

    def _form_input(
        self,
        ctx: Context,
        round_id: str | None,
        arg: str | None,
        values: Mapping[str, str],
        settings: Mapping[str, Any],
    ) -> FormInput:
        config = self.services.config
        today = self.services.clock.now().date()
        return FormInput(ctx, round_id, arg, values, today, settings, tuple(config.rounds.templates))

    async def _transact(
        self, ctx: Context | None, route: Route, round_id: str | None, make: Callable[[Unit], Any]
    ) -> DomainError | None:
        assert route.handler is not None
        for _attempt in range(ATTEMPTS):
            try:
                async with self.sessions() as s, s.begin():
                    if ctx is not None and ctx.request_id and not await self._first_time(s, ctx.request_id):
                        return None
                    u = self.unit(s, ctx)
                    if await self.admit(u, route, round_id):
                        await route.handler(u, make(u))
            except DomainError as err:
                return err
            except (StaleDataError, IntegrityError) as err:
                # Two clicks raced on the same round (version column) or row: run again on fresh state.
                log.info("retrying %s after a conflict (%s)", route.command.__name__, type(err).__name__)
                continue
            except KeyUnavailable:
                return DomainError("round_key_unavailable")
            except Exception as err:
                if isinstance(err, OSError) or is_db_error(err):
                    raise ServiceUnavailable(type(err).__name__) from None
                raise
            else:
                self.notify()
                return None
        return DomainError("busy_try_again")

    async def admit(self, u: Unit, route: Route, round_id: str | None) -> bool:
        """Resolve the round and apply the route's declared rule. False: nothing to do (a timer for a
        round that is gone)."""
        ctx = u.ctx
        if route.in_round:
            if ctx is None:
                rnd = await u.s.get(RoundRow, round_id) if round_id else None
                if rnd is None:
                    return False
            elif route.locate is not None:
                rnd = await route.locate(u, round_id)
            else:
                rnd = await queries.round_linked_here(u.s, ctx.where, round_id)
            u.round = rnd
            self.services.keys.release(rnd)
            rules.check_phase(rnd.phase, route.phases)
        if ctx is not None and route.who is not Who.ANYONE:
            convener = u.is_convener()
            joined = False
            if (
                route.in_round
                and route.who is not Who.CONVENER
                and not (route.who is Who.MEMBER_OR_CONVENER and convener)
            ):
                u.participant = await queries.participant(u.s, u.round.id, ctx.actor)
                joined = u.participant is not None
            title = u.round.title if route.in_round else None
            rules.check_who(route.who, convener=convener, joined=joined, round_title=title)
        if route.guard is not None:
            await route.guard(u)
        return True

    async def _first_time(self, s: AsyncSession, request_id: str) -> bool:
        """Claims the request id; False when it was handled already (by this worker or another)."""
        return bool(await claim_requests(s, (request_id,), self.services.clock.now().date()))

    async def phase_now(self, ctx: Context, round_id: str | None) -> str | None:
        try:
            async with self.sessions() as s:
                return (await queries.round_linked_here(s, ctx.where, round_id)).phase
        except DomainError:
            return None  # the handler itself gives the clear refusal

    # --- forms --------------------------------------------------------------------------------

    async def open_form(self, ctx: Context, name: str, round_id: str | None, arg: str | None) -> Form:
        """The form, once the rule of the command it leads to allows it (raises DomainError)."""
        route = self.registry.form(name)
        if route is None or route.form is None:
            raise DomainError("unknown_form")
        try:
            async with self.sessions() as s:
                u = self.unit(s, ctx)
                await self.admit(u, route, round_id)
                fields, intro = await route.form.fields(u, arg)
                rid = u.round.id if route.in_round else "-"
        except KeyUnavailable:
            raise DomainError("round_key_unavailable") from None
        except Exception as err:
            if isinstance(err, OSError) or is_db_error(err):
                raise ServiceUnavailable(type(err).__name__) from None
            raise
        label = self.services.prompts.label
        return Form(
            form_id=ComponentId(rid, "form", (name, arg) if arg else (name,)).encode(),
            title=label("form_titles", name),
            submit=label("form_submit", name),
            intro=intro,
            fields=fields,
        )

    # --- timers and batches -------------------------------------------------------------------

    async def fire_timer(self, s: AsyncSession, timer: DueTimer) -> None:
        """A due timer, inside the scheduler's transaction: the one route into a timed change."""
        route = self.registry.timer(timer.kind)
        if route is None or route.timer is None or route.handler is None:
            log.warning("a timer of unknown kind %r was skipped", timer.kind)
            return
        u = self.unit(s, None)
        if await self.admit(u, route, timer.round_id):
            await route.handler(u, route.timer.build(timer))

    async def release_finished_keys(self) -> None:
        """Forget cached keys of rounds that are over, wherever they were closed (another worker's
        close shreds the key in the store; this drops this worker's copy too)."""
        cached = self.services.keys.cached()
        if not cached:
            return
        async with self.sessions() as s:
            over = await s.scalars(
                select(RoundRow.id).where(
                    RoundRow.id.in_(cached),
                    or_(
                        RoundRow.key_destroyed.is_(True),
                        RoundRow.phase.not_in([p.value for p in OPEN_PHASES]),
                    ),
                )
            )
            for round_id in over:
                self.services.keys.forget(round_id)

    async def _apply_batch(self, s: AsyncSession, commands: list[Any]) -> list[Any]:
        """Each batch handler gets its commands; their answers come back in the commands' order."""
        u = self.unit(s, None)
        groups: dict[Any, list[int]] = {}
        for i, command in enumerate(commands):
            groups.setdefault(self.registry.route(type(command)).batch, []).append(i)
        answers: list[Any] = [None] * len(commands)
        for handler, indices in groups.items():
            got = await handler(u, [commands[i] for i in indices])
            if got is not None:
                for i, value in zip(indices, got, strict=True):
                    answers[i] = value
        if any(isinstance(o, OutboxRow) for o in (*s.new, *s.identity_map.values())):
            sqla_event.listen(s.sync_session, "after_commit", lambda _s: self.notify(), once=True)
        return answers

    # --- refusals -----------------------------------------------------------------------------

    @staticmethod
    def refusal(err: DomainError) -> Message:
        params = {k: _jsonable(v) for k, v in err.params.items()}
        return Message((Part(PromptKey.ERROR, {"code": err.code, **params}),))

    async def tell(self, ctx: Context, err: DomainError) -> None:
        """A refusal, privately, in its own transaction (the command's own was rolled back)."""
        message = self.refusal(err)
        try:
            async with self.sessions() as s, s.begin():
                s.add(private_row(ctx, message))
        except Exception as exc:
            if is_db_error(exc) or isinstance(exc, OSError):
                raise ServiceUnavailable(type(exc).__name__) from None
            raise
        self.notify()

    async def form_errors(
        self, ctx: Context, err: FormErrors, values: Mapping[str, str], inline: bool
    ) -> dict[str, str]:
        """Field problems: inline ({field: message}, the form keeps what was typed) or privately,
        with what was typed repeated (as canonical text) so that nothing is lost."""
        if inline:
            label = self.services.prompts.label
            return {f: label("field_errors", code) for f, code in err.fields.items()}
        kept = {k: canonical_text(v)[:3000] for k, v in values.items() if v}
        await self.tell(ctx, DomainError("invalid_form", fields=err.fields, kept=kept))
        return {}


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | list | dict | None) else str(value)
