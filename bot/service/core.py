"""The dialogue core: one handler per command, each a single transaction that changes state and
writes its outgoing messages to the outbox together.

Adapters call :meth:`Convene.handle` (commands), :meth:`Convene.press` (a button) and
:meth:`Convene.open_form` / :meth:`Convene.submit_form` (modals). Refusals become private replies;
nothing is half-written, because a refusal rolls the whole transaction back.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from sqlalchemy import delete, event, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from bot.config import AppConfig
from bot.domain import validation
from bot.domain.errors import DomainError, FormErrors
from bot.domain.phases import NEXT, OPEN_PHASES, Phase, can_transition
from bot.domain.ranking import BallotFact, rank_ideas
from bot.forms import Form, FormField, Option
from bot.ids import ComponentId
from bot.keys import KeyStore, KeyUnavailable, pseudonym
from bot.messages import ButtonSpec, Message, Part
from bot.persistence.tables import (
    ActionRow,
    BallotRow,
    ConversationRow,
    GoalRow,
    IdeaRow,
    InboxRow,
    ParticipantRow,
    RoundRow,
    TimerRow,
)
from bot.ports import Clock
from bot.prompts import PromptKey, Prompts
from bot.refs import Platform, UserRef
from bot.service import commands as c
from bot.service.outbox import post_everywhere, private_row, public_row

log = logging.getLogger("convene.core")

CHOICES = {"a": "agree", "d": "disagree", "p": "pass"}
IDEAS_PER_MESSAGE = 5  # Discord allows five rows of buttons in one message
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
UNDECLARED = "prefer_not_to_say"


def new_id() -> str:
    """Random (UUIDv4) ids everywhere: no order, no time."""
    return uuid.uuid4().hex


class ServiceUnavailable(Exception):
    """Storage failed; the adapter tells the person to try again. Nothing was stored."""


class Convene:
    def __init__(
        self,
        config: AppConfig,
        sessions: async_sessionmaker[AsyncSession],
        keys: KeyStore,
        clock: Clock,
        prompts: Prompts,
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.keys = keys
        self.clock = clock
        self.prompts = prompts
        self.outbox_listeners: list[Callable[[], None]] = []
        self._key_cache: dict[str, bytes] = {}
        # Shuffles and join codes. Cryptographic by default; tests seed it for golden transcripts.
        self.rng: random.Random = secrets.SystemRandom()
        self._handlers: dict[type[Any], Callable[[AsyncSession, Any], Awaitable[None]]] = {
            c.StartRound: self._start,
            c.LinkRound: self._link,
            c.JoinRound: self._join,
            c.Contribute: self._contribute,
            c.ListMine: self._list_mine,
            c.Withdraw: self._withdraw,
            c.Advance: self._advance,
            c.CloseRound: self._close,
            c.CancelRound: self._cancel,
            c.AddGoal: self._add_goal,
            c.AddAction: self._add_action,
            c.Volunteer: self._volunteer,
            c.Status: self._status,
            c.Help: self._help,
        }
        from bot.service.ingest import BallotIngest

        self.ingest = BallotIngest(self, config.ingest.batch_max, config.ingest.batch_wait_ms / 1000)

    # --- entry points -------------------------------------------------------------------------

    async def handle(self, command: c.Command) -> None:
        """Run a command; a refusal becomes a private reply. Raises ServiceUnavailable only when
        storage itself fails."""
        if isinstance(command, c.CastBallot | c.RateIdea):
            await self.ingest.submit(command)
            return
        error = await self._run(command)
        if isinstance(error, FormErrors) and command.ctx is not None:
            await self._form_errors(command.ctx, error, {}, inline=False)
        elif error is not None and command.ctx is not None:
            await self._reply_error(command.ctx, error)

    async def press(self, ctx: c.Context, action_id: str) -> Form | None:
        """A button was pressed. Returns a form to open, or None when the press was handled."""
        cid = ComponentId.decode(action_id)
        if cid is None:
            await self._reply_error(ctx, DomainError("unknown_button"))
            return None
        rid, verb, args = cid.round_id, cid.verb, cid.args
        try:
            if verb == "v" and len(args) == 2 and args[1] in CHOICES:
                await self.handle(c.CastBallot(ctx, rid, _int(args[0]), CHOICES[args[1]]))
            elif verb in ("join", "contribute", "rate", "goal", "action") and len(args) <= 1:
                return await self.open_form(ctx, verb, round_id=rid, arg=args[0] if args else None)
            elif verb == "mine" and not args:
                await self.handle(c.ListMine(ctx))
            elif verb == "wd" and len(args) == 1:
                await self.handle(c.Withdraw(ctx, rid, args[0]))
            elif verb == "take" and len(args) == 1:
                await self.handle(c.Volunteer(ctx, rid, _int(args[0])))
            else:
                raise DomainError("unknown_button")
        except DomainError as err:
            await self._reply_error(ctx, err)
        return None

    async def open_form(
        self, ctx: c.Context, name: str, *, round_id: str | None = None, arg: str | None = None
    ) -> Form | None:
        """The form for ``name``, or None after a private refusal (not joined, wrong phase...)."""
        try:
            async with self.sessions() as s:
                return await self._form(s, ctx, name, round_id, arg)
        except DomainError as err:
            await self._reply_error(ctx, err)
            return None

    async def submit_form(
        self, ctx: c.Context, form_id: str, values: dict[str, str], *, inline_errors: bool = False
    ) -> dict[str, str]:
        """Handle a submitted form. With ``inline_errors`` (Slack modals) field problems come back
        as {field: message} for the adapter to show in the form, which keeps what was typed; without
        it they are sent privately, with the typed values repeated so nothing is lost."""
        cid = ComponentId.decode(form_id)
        if cid is None or cid.verb != "form" or not cid.args:
            await self._reply_error(ctx, DomainError("unknown_form"))
            return {}
        name, arg = cid.args[0], (cid.args[1] if len(cid.args) > 1 else None)
        rid = None if cid.round_id == "-" else cid.round_id
        try:
            command = self._command_from_form(ctx, name, rid, arg, values)
        except FormErrors as err:
            return await self._form_errors(ctx, err, values, inline_errors)
        except DomainError as err:
            await self._reply_error(ctx, err)
            return {}
        if isinstance(command, c.RateIdea):
            await self.ingest.submit(command)
            return {}
        error = await self._run(command)
        if isinstance(error, FormErrors):
            return await self._form_errors(ctx, error, values, inline_errors)
        if error is not None:
            await self._reply_error(ctx, error)
        return {}

    async def refuse(self, ctx: c.Context, error: DomainError) -> None:
        """A refusal decided at the edge (text in a channel, a DM, an unreadable payload)."""
        await self._reply_error(ctx, error)

    # --- plumbing -----------------------------------------------------------------------------

    def notify_outbox(self) -> None:
        for listener in self.outbox_listeners:
            listener()

    async def _run(self, command: Any) -> DomainError | None:
        handler = self._handlers[type(command)]
        ctx: c.Context | None = command.ctx
        if isinstance(command, c.Advance) and command.expected is None and ctx is not None:
            # "next" means: move on from the phase the round is in *now*. Pinning it before the
            # transaction makes two racing clicks (or a retry after a conflict) move it once.
            command = replace(command, expected=await self._phase_now(ctx, command.round_id))
        for _attempt in range(5):
            try:
                async with self.sessions() as s, s.begin():
                    if ctx is not None and ctx.request_id and not await self._first_time(s, ctx.request_id):
                        return None
                    await handler(s, command)
            except DomainError as err:
                return err
            except (StaleDataError, IntegrityError) as err:
                # Two clicks raced on the same round (version column) or row: run again on fresh state.
                log.info("retrying %s after a conflict (%s)", type(command).__name__, type(err).__name__)
                continue
            except KeyUnavailable:
                return DomainError("round_key_unavailable")
            except OSError as err:
                raise ServiceUnavailable(str(err)) from None
            except Exception as err:
                if _is_db_error(err):
                    raise ServiceUnavailable(type(err).__name__) from None
                raise
            else:
                self.notify_outbox()
                return None
        return DomainError("busy_try_again")

    async def _phase_now(self, ctx: c.Context, round_id: str | None) -> str | None:
        try:
            async with self.sessions() as s:
                return (await self._round(s, ctx, round_id)).phase
        except DomainError:
            return None  # the handler itself gives the clear refusal

    async def _first_time(self, s: AsyncSession, request_id: str) -> bool:
        if await s.get(InboxRow, request_id) is not None:
            return False
        s.add(InboxRow(key=request_id, day=self.clock.now().date()))
        await s.flush()
        return True

    async def _reply_error(self, ctx: c.Context, err: DomainError, round_id: str | None = None) -> None:
        message = Message((Part(PromptKey.ERROR, {"code": err.code, **_jsonable(err.params)}),))
        try:
            async with self.sessions() as s, s.begin():
                s.add(private_row(ctx, message, round_id))
        except Exception as exc:
            if _is_db_error(exc) or isinstance(exc, OSError):
                raise ServiceUnavailable(type(exc).__name__) from None
            raise
        self.notify_outbox()

    async def _form_errors(
        self, ctx: c.Context, err: FormErrors, values: dict[str, str], inline: bool
    ) -> dict[str, str]:
        if inline:
            return {f: self.prompts.label("field_errors", code) for f, code in err.fields.items()}
        kept = {k: v[:3000] for k, v in values.items() if v}
        await self._reply_error(ctx, DomainError("invalid_form", fields=err.fields, kept=kept))
        return {}

    def round_key(self, round_id: str) -> bytes:
        key = self._key_cache.get(round_id)
        if key is None:
            key = self.keys.get(round_id)
            if key is None:
                raise DomainError("round_key_unavailable")
            self._key_cache[round_id] = key
        return key

    def pseudonym(self, round_id: str, user: UserRef) -> str:
        return pseudonym(self.round_key(round_id), user.key())

    def _shred(self, round_id: str) -> None:
        self._key_cache.pop(round_id, None)
        self.keys.destroy(round_id)

    # --- lookups ------------------------------------------------------------------------------

    async def round_here(self, s: AsyncSession, ctx: c.Context) -> RoundRow:
        row = await s.scalar(
            select(RoundRow)
            .join(ConversationRow, ConversationRow.round_id == RoundRow.id)
            .where(
                ConversationRow.platform == ctx.where.platform.value,
                ConversationRow.workspace_id == ctx.where.workspace_id,
                ConversationRow.channel_id == ctx.where.channel_id,
                RoundRow.phase.in_([p.value for p in OPEN_PHASES]),
            )
        )
        if row is None:
            raise DomainError("no_round_here")
        return row

    async def _round(self, s: AsyncSession, ctx: c.Context, round_id: str | None) -> RoundRow:
        """The round a button or form names, which must be linked to the conversation it came from."""
        if round_id is None:
            return await self.round_here(s, ctx)
        row = await s.scalar(
            select(RoundRow)
            .join(ConversationRow, ConversationRow.round_id == RoundRow.id)
            .where(
                RoundRow.id == round_id,
                ConversationRow.platform == ctx.where.platform.value,
                ConversationRow.workspace_id == ctx.where.workspace_id,
                ConversationRow.channel_id == ctx.where.channel_id,
            )
        )
        if row is None:
            raise DomainError("round_gone")
        return row

    async def _participant(self, s: AsyncSession, rnd: RoundRow, user: UserRef) -> ParticipantRow | None:
        return await s.scalar(
            select(ParticipantRow).where(
                ParticipantRow.round_id == rnd.id,
                ParticipantRow.platform == user.platform.value,
                ParticipantRow.workspace_id == user.workspace_id,
                ParticipantRow.user_id == user.user_id,
            )
        )

    async def _require_joined(self, s: AsyncSession, rnd: RoundRow, user: UserRef) -> ParticipantRow:
        p = await self._participant(s, rnd, user)
        if p is None:
            raise DomainError("not_joined", round=rnd.title)
        return p

    def is_convener(self, rnd: RoundRow, ctx: c.Context) -> bool:
        return ctx.is_convener or ctx.actor.key() in rnd.conveners

    def _require_convener(self, rnd: RoundRow | None, ctx: c.Context) -> None:
        if not (ctx.is_convener if rnd is None else self.is_convener(rnd, ctx)):
            raise DomainError("not_convener")

    @staticmethod
    def _require_phase(rnd: RoundRow, *phases: Phase) -> None:
        if rnd.phase not in phases:
            raise DomainError("wrong_phase", phase=rnd.phase, needed=[p.value for p in phases])

    async def _count(self, s: AsyncSession, stmt: Any) -> int:
        return int(await s.scalar(stmt) or 0)

    # --- round lifecycle ----------------------------------------------------------------------

    async def _start(self, s: AsyncSession, cmd: c.StartRound) -> None:
        ctx = cmd.ctx
        self._require_convener(None, ctx)
        try:
            await self.round_here(s, ctx)
        except DomainError:
            pass
        else:
            raise DomainError("round_already_here")
        rc = self.config.rounds
        template = cmd.template or rc.default_template
        if template not in rc.templates:
            raise FormErrors({"template": "unknown_choice"})
        defaults = rc.templates[template].phase_minutes
        minutes = {p.value: cmd.minutes.get(p.value) or defaults.for_phase(p) for p in OPEN_PHASES}
        rnd = RoundRow(
            id=new_id(),
            title=cmd.title,
            purpose=cmd.purpose,
            template=template,
            language=self.config.language,
            phase=Phase.CONTRIBUTE.value,
            join_code="".join(self.rng.choice(_CODE_ALPHABET) for _ in range(8)),
            conveners=[ctx.actor.key()],
            settings={
                "min_chars": rc.min_contribution_chars,
                "max_chars": rc.max_contribution_chars,
                "per_participant": rc.contributions_per_participant,
                "sector_min_voters": rc.sector_min_voters,
                "sectors": list(rc.sectors),
                "minutes": minutes,
            },
            key_destroyed=False,
        )
        s.add(rnd)
        await s.flush()  # no ORM relationships, so the round row goes first explicitly
        conv = self._link_row(rnd.id, ctx)
        s.add(conv)
        self.keys.create(rnd.id)
        self._schedule(s, rnd, Phase.CONTRIBUTE)
        await s.flush()
        s.add(public_row(rnd.id, conv, await self._card(s, rnd), slot=f"card:{rnd.id}"))
        s.add(private_row(ctx, Message((Part(PromptKey.ROUND_STARTED, {"code": rnd.join_code}),)), rnd.id))

    @staticmethod
    def _link_row(round_id: str, ctx: c.Context) -> ConversationRow:
        return ConversationRow(
            id=new_id(),
            round_id=round_id,
            platform=ctx.where.platform.value,
            workspace_id=ctx.where.workspace_id,
            channel_id=ctx.where.channel_id,
        )

    async def _link(self, s: AsyncSession, cmd: c.LinkRound) -> None:
        ctx = cmd.ctx
        self._require_convener(None, ctx)
        code = cmd.code.strip().upper()
        rnd = await s.scalar(select(RoundRow).where(RoundRow.join_code == code)) if code else None
        if rnd is None or rnd.phase not in OPEN_PHASES:
            raise DomainError("unknown_code")
        try:
            here = await self.round_here(s, ctx)
        except DomainError:
            here = None
        if here is not None:
            raise DomainError("already_linked" if here.id == rnd.id else "round_already_here")
        conv = self._link_row(rnd.id, ctx)
        s.add(conv)
        await s.flush()
        s.add(public_row(rnd.id, conv, await self._card(s, rnd), slot=f"card:{rnd.id}"))
        s.add(private_row(ctx, Message((Part(PromptKey.ROUND_LINKED, {"title": rnd.title}),)), rnd.id))

    def _schedule(self, s: AsyncSession, rnd: RoundRow, phase: Phase) -> None:
        minutes = rnd.settings.get("minutes", {}).get(phase.value)
        if minutes:
            s.add(
                TimerRow(
                    id=new_id(),
                    round_id=rnd.id,
                    kind="phase_deadline",
                    phase=phase.value,
                    due_at=self.clock.now() + dt.timedelta(minutes=minutes),
                    status="pending",
                )
            )

    async def _deadline(self, s: AsyncSession, rnd: RoundRow) -> dt.datetime | None:
        return await s.scalar(
            select(TimerRow.due_at).where(
                TimerRow.round_id == rnd.id,
                TimerRow.phase == rnd.phase,
                TimerRow.kind == "phase_deadline",
                TimerRow.status == "pending",
            )
        )

    async def _card(self, s: AsyncSession, rnd: RoundRow) -> Message:
        deadline = await self._deadline(s, rnd)
        participants = await self._count(
            s, select(func.count()).select_from(ParticipantRow).where(ParticipantRow.round_id == rnd.id)
        )
        buttons: tuple[ButtonSpec, ...] = ()
        if rnd.phase in (Phase.CONTRIBUTE, Phase.VOTE):
            buttons = (ButtonSpec(ComponentId(rnd.id, "join").encode(), "join", "primary"),)
        if rnd.phase == Phase.CONTRIBUTE:
            buttons += (
                ButtonSpec(ComponentId(rnd.id, "contribute").encode(), "contribute"),
                ButtonSpec(ComponentId(rnd.id, "mine").encode(), "mine"),
            )
        params = {
            "title": rnd.title,
            "purpose": rnd.purpose,
            "phase": rnd.phase,
            "deadline": _fmt_time(deadline),
            "participants": participants,
            "per_participant": rnd.settings["per_participant"],
        }
        return Message((Part(PromptKey.ROUND_CARD, params, buttons),))

    # --- joining and contributing ---------------------------------------------------------------

    async def _join(self, s: AsyncSession, cmd: c.JoinRound) -> None:
        ctx = cmd.ctx
        rnd = await self._round(s, ctx, cmd.round_id)
        if rnd.phase not in OPEN_PHASES:
            raise DomainError("round_over")
        if await self._participant(s, rnd, ctx.actor) is not None:
            raise DomainError("already_joined")
        sector = cmd.sector or None
        if sector is not None and sector not in rnd.settings["sectors"]:
            raise FormErrors({"sector": "unknown_choice"})
        s.add(
            ParticipantRow(
                id=new_id(),
                round_id=rnd.id,
                platform=ctx.actor.platform.value,
                workspace_id=ctx.actor.workspace_id,
                user_id=ctx.actor.user_id,
                sector=sector,
            )
        )
        buttons: tuple[ButtonSpec, ...] = ()
        if rnd.phase == Phase.CONTRIBUTE:
            buttons = (ButtonSpec(ComponentId(rnd.id, "contribute").encode(), "contribute", "primary"),)
        s.add(
            private_row(
                ctx,
                Message((Part(PromptKey.JOINED, {"title": rnd.title, "phase": rnd.phase}, buttons),)),
                rnd.id,
            )
        )

    async def _mine(self, s: AsyncSession, rnd: RoundRow, user: UserRef) -> list[IdeaRow]:
        key = self.pseudonym(rnd.id, user)
        rows = await s.scalars(
            select(IdeaRow)
            .where(IdeaRow.round_id == rnd.id, IdeaRow.author_key == key, IdeaRow.status == "pending")
            .order_by(IdeaRow.text)
        )
        return list(rows)

    async def _contribute(self, s: AsyncSession, cmd: c.Contribute) -> None:
        ctx = cmd.ctx
        rnd = await self._round(s, ctx, cmd.round_id)
        self._require_phase(rnd, Phase.CONTRIBUTE)
        await self._require_joined(s, rnd, ctx.actor)
        st = rnd.settings
        text = validation.contribution_from_form(
            {"text": cmd.text}, min_len=st["min_chars"], max_len=st["max_chars"]
        )
        mine = await self._mine(s, rnd, ctx.actor)
        if len(mine) >= st["per_participant"]:
            raise DomainError("quota_reached", limit=st["per_participant"])
        s.add(
            IdeaRow(
                id=new_id(),
                round_id=rnd.id,
                author_key=self.pseudonym(rnd.id, ctx.actor),
                text=text,
                status="pending",
            )
        )
        # Deliberately no echo of the text: the private reply is a row too, until it is delivered.
        params = {"count": len(mine) + 1, "limit": st["per_participant"]}
        buttons = (ButtonSpec(ComponentId(rnd.id, "mine").encode(), "mine"),)
        s.add(private_row(ctx, Message((Part(PromptKey.CONTRIBUTION_RECORDED, params, buttons),)), rnd.id))

    async def _list_mine(self, s: AsyncSession, cmd: c.ListMine) -> None:
        ctx = cmd.ctx
        rnd = await self.round_here(s, ctx)
        self._require_phase(rnd, Phase.CONTRIBUTE)
        await self._require_joined(s, rnd, ctx.actor)
        mine = await self._mine(s, rnd, ctx.actor)
        limit = rnd.settings["per_participant"]
        parts = [Part(PromptKey.CONTRIBUTIONS_MINE, {"count": len(mine), "limit": limit})]
        for idea in mine:
            wd = ButtonSpec(ComponentId(rnd.id, "wd", (idea.id,)).encode(), "withdraw", "danger")
            parts.append(Part(PromptKey.RELEASE_IDEA, {"label": None, "text": idea.text}, (wd,)))
        s.add(private_row(ctx, Message(tuple(parts)), rnd.id))

    async def _withdraw(self, s: AsyncSession, cmd: c.Withdraw) -> None:
        ctx = cmd.ctx
        rnd = await self._round(s, ctx, cmd.round_id)
        self._require_phase(rnd, Phase.CONTRIBUTE)
        result = await s.execute(
            delete(IdeaRow).where(
                IdeaRow.id == cmd.idea_id,
                IdeaRow.round_id == rnd.id,
                IdeaRow.status == "pending",
                IdeaRow.author_key == self.pseudonym(rnd.id, ctx.actor),
            )
        )
        if getattr(result, "rowcount", 0) != 1:
            raise DomainError("not_yours_or_gone")
        s.add(private_row(ctx, Message((Part(PromptKey.CONTRIBUTION_WITHDRAWN, {}),)), rnd.id))

    # --- phases -------------------------------------------------------------------------------

    async def _advance(self, s: AsyncSession, cmd: c.Advance) -> None:
        if cmd.ctx is None:  # the deadline scheduler
            if cmd.round_id is None:
                raise ValueError("a scheduled advance names its round")
            rnd = await s.get(RoundRow, cmd.round_id)
            if rnd is None:
                return
        else:
            rnd = await self._round(s, cmd.ctx, cmd.round_id)
            self._require_convener(rnd, cmd.ctx)
        if cmd.expected is not None and rnd.phase != cmd.expected:
            return  # a late or duplicate timer, or a double click: already done
        phase = Phase(rnd.phase)
        if phase not in NEXT:
            raise DomainError("round_over")
        target = NEXT[phase]
        if cmd.ctx is not None:
            await self._guard(s, rnd, phase)
        await self.transition(s, rnd, target)
        if cmd.ctx is not None:
            self._confirm_phase(s, cmd.ctx, rnd)

    async def _guard(self, s: AsyncSession, rnd: RoundRow, phase: Phase) -> None:
        """Checks for a convener's early advance; deadlines move on regardless."""
        if phase == Phase.CONTRIBUTE:
            n = await self._count(
                s, select(func.count()).select_from(IdeaRow).where(IdeaRow.round_id == rnd.id)
            )
            if n == 0:
                raise DomainError("no_ideas")
        if phase == Phase.GOALS:
            n = await self._count(
                s, select(func.count()).select_from(GoalRow).where(GoalRow.round_id == rnd.id)
            )
            if n == 0:
                raise DomainError("no_goals")

    async def _close(self, s: AsyncSession, cmd: c.CloseRound) -> None:
        rnd = await self.round_here(s, cmd.ctx)
        self._require_convener(rnd, cmd.ctx)
        if not can_transition(Phase(rnd.phase), Phase.CLOSED):
            raise DomainError("cannot_close_yet", phase=rnd.phase)
        await self.transition(s, rnd, Phase.CLOSED)
        self._confirm_phase(s, cmd.ctx, rnd)

    async def _cancel(self, s: AsyncSession, cmd: c.CancelRound) -> None:
        rnd = await self.round_here(s, cmd.ctx)
        self._require_convener(rnd, cmd.ctx)
        await self.transition(s, rnd, Phase.CANCELLED)
        self._confirm_phase(s, cmd.ctx, rnd)

    @staticmethod
    def _confirm_phase(s: AsyncSession, ctx: c.Context, rnd: RoundRow) -> None:
        """Every command gets a private answer (Discord waits for one after deferring)."""
        s.add(
            private_row(
                ctx,
                Message((Part(PromptKey.PHASE_CHANGED, {"title": rnd.title, "phase": rnd.phase}),)),
                rnd.id,
            )
        )

    async def transition(self, s: AsyncSession, rnd: RoundRow, target: Phase) -> None:
        source = Phase(rnd.phase)
        if not can_transition(source, target):
            raise DomainError("bad_transition", phase=source.value, target=target.value)
        await s.execute(
            update(TimerRow)
            .where(
                TimerRow.round_id == rnd.id, TimerRow.status == "pending", TimerRow.kind == "phase_deadline"
            )
            .values(status="done")
        )
        rnd.phase = target.value
        if source == Phase.CONTRIBUTE and target == Phase.VOTE:
            await self._release(s, rnd)
        elif source == Phase.VOTE and target == Phase.GOALS:
            await self._tally(s, rnd)
        elif target == Phase.ACTIONS:
            await self._open_actions(s, rnd)
        elif target == Phase.CLOSED:
            await self._summarise(s, rnd)
        elif target == Phase.CANCELLED:
            await s.execute(delete(IdeaRow).where(IdeaRow.round_id == rnd.id, IdeaRow.status == "pending"))
            await post_everywhere(
                s, rnd.id, Message((Part(PromptKey.ROUND_CANCELLED, {"title": rnd.title}),))
            )
        if target in (Phase.CLOSED, Phase.CANCELLED):
            await self._detach_ballots(s, rnd)
            rnd.join_code = None
            rnd.key_destroyed = True
            round_id = rnd.id
            # Shred the key only once the close is committed; a rolled-back close keeps the round usable.
            event.listen(s.sync_session, "after_commit", lambda _session: self._shred(round_id), once=True)
        self._schedule(s, rnd, target)
        await s.flush()
        await post_everywhere(s, rnd.id, await self._card(s, rnd), slot=f"card:{rnd.id}")

    async def _release(self, s: AsyncSession, rnd: RoundRow) -> None:
        """Show every contribution at once, shuffled, as "Idea n", with no author or origin.

        Rows are rewritten in the shuffled order with fresh random ids, so neither row order
        (SQLite rowid, PostgreSQL heap order) nor ids tell the order of submission."""
        pending = list(
            await s.scalars(select(IdeaRow).where(IdeaRow.round_id == rnd.id, IdeaRow.status == "pending"))
        )
        self.rng.shuffle(pending)
        texts = [row.text for row in pending]
        await s.execute(delete(IdeaRow).where(IdeaRow.round_id == rnd.id))
        await s.flush()
        for number, text in enumerate(texts, start=1):
            s.add(
                IdeaRow(
                    id=new_id(), round_id=rnd.id, author_key=None, text=text, status="released", number=number
                )
            )
        await s.flush()
        header = Part(PromptKey.RELEASE_HEADER, {"count": len(texts), "title": rnd.title})
        cards = [
            Part(
                PromptKey.RELEASE_IDEA,
                {"label": n, "text": text},
                (
                    ButtonSpec(ComponentId(rnd.id, "v", (str(n), "a")).encode(), "agree", "primary"),
                    ButtonSpec(ComponentId(rnd.id, "v", (str(n), "d")).encode(), "disagree", "danger"),
                    ButtonSpec(ComponentId(rnd.id, "v", (str(n), "p")).encode(), "pass"),
                    ButtonSpec(ComponentId(rnd.id, "rate", (str(n),)).encode(), "rate"),
                ),
            )
            for n, text in enumerate(texts, start=1)
        ]
        await self._post_chunked(s, rnd.id, header, cards)

    async def _post_chunked(self, s: AsyncSession, round_id: str, header: Part, parts: list[Part]) -> None:
        if not parts:
            await post_everywhere(s, round_id, Message((header,)))
            return
        for i in range(0, len(parts), IDEAS_PER_MESSAGE):
            chunk = tuple(parts[i : i + IDEAS_PER_MESSAGE])
            await post_everywhere(s, round_id, Message((header, *chunk) if i == 0 else chunk))

    async def voter_sectors(self, s: AsyncSession, rnd: RoundRow) -> dict[str, str | None]:
        """voter pseudonym -> declared sector, computable only while the round key exists."""
        roster = await s.execute(
            select(
                ParticipantRow.platform,
                ParticipantRow.workspace_id,
                ParticipantRow.user_id,
                ParticipantRow.sector,
            ).where(ParticipantRow.round_id == rnd.id)
        )
        key = self.round_key(rnd.id)
        out: dict[str, str | None] = {}
        for platform, workspace, user, sector in roster:
            ref_key = UserRef(Platform(platform), workspace, user).key()
            out[pseudonym(key, ref_key)] = None if sector in (None, UNDECLARED) else sector
        return out

    async def _tally(self, s: AsyncSession, rnd: RoundRow) -> None:
        ideas = list(
            await s.scalars(select(IdeaRow).where(IdeaRow.round_id == rnd.id).order_by(IdeaRow.number))
        )
        ballots = list(await s.scalars(select(BallotRow).where(BallotRow.round_id == rnd.id)))
        facts = [BallotFact(b.voter_key, b.idea_number, b.choice) for b in ballots if b.choice]
        results = rank_ideas(
            [i.number for i in ideas if i.number is not None],
            facts,
            await self.voter_sectors(s, rnd),
            sector_min_voters=rnd.settings["sector_min_voters"],
        )
        ratings: dict[int, tuple[list[int], list[int]]] = {}
        for b in ballots:
            u, i = ratings.setdefault(b.idea_number, ([], []))
            if b.urgency:
                u.append(b.urgency)
            if b.impact:
                i.append(b.impact)
        by_number = {i.number: i for i in ideas}
        for r in results:
            row = by_number[r.idea]
            row.agree, row.disagree, row.passes, row.score, row.rank = (
                r.agree,
                r.disagree,
                r.passes,
                r.score,
                r.rank,
            )
            row.common_ground = r.common_ground
            u, imp = ratings.get(r.idea, ([], []))
            row.urgency = _median(u)
            row.impact = _median(imp)
        await self._detach_ballots(s, rnd)
        header = Part(PromptKey.RESULTS_HEADER, {"count": len(results), "title": rnd.title})
        parts = [
            Part(
                PromptKey.RESULTS_IDEA,
                {
                    "rank": r.rank,
                    "label": r.idea,
                    "text": by_number[r.idea].text,
                    "agree": r.agree,
                    "disagree": r.disagree,
                    "pass": r.passes,
                    "score": round(r.score * 100),
                    "common_ground": r.common_ground,
                    "divisive": r.divisive,
                    "by_sector": [{"name": name, "agree": round(share * 100)} for name, share in r.sectors],
                    "urgency": by_number[r.idea].urgency,
                    "impact": by_number[r.idea].impact,
                },
                (ButtonSpec(ComponentId(rnd.id, "goal", (str(r.idea),)).encode(), "make_goal"),),
            )
            for r in results
        ]
        await self._post_chunked(s, rnd.id, header, parts)
        if results:
            chart = {
                "labels": [r.idea for r in results],
                "gac": [r.score for r in results],
                "urgency": [by_number[r.idea].urgency for r in results],
                "impact": [by_number[r.idea].impact for r in results],
                "common_ground": [r.common_ground for r in results],
            }
            await post_everywhere(s, rnd.id, Message((Part(PromptKey.CHART, {}),), chart=chart))
        await post_everywhere(s, rnd.id, Message((Part(PromptKey.GOALS_OPEN, {"title": rnd.title}),)))

    async def _detach_ballots(self, s: AsyncSession, rnd: RoundRow) -> None:
        """Replace HMAC voter keys by random per-voter labels and rewrite the rows in random order,
        so that even the round key (were it recovered from a backup) links no one to a ballot."""
        ballots = list(await s.scalars(select(BallotRow).where(BallotRow.round_id == rnd.id)))
        if not ballots:
            return
        relabel: dict[str, str] = {}
        copies = [
            (relabel.setdefault(b.voter_key, new_id()), b.idea_number, b.choice, b.urgency, b.impact)
            for b in ballots
        ]
        self.rng.shuffle(copies)
        await s.execute(delete(BallotRow).where(BallotRow.round_id == rnd.id))
        await s.flush()
        for voter, idea, choice, urgency, impact in copies:
            s.add(
                BallotRow(
                    id=new_id(),
                    round_id=rnd.id,
                    idea_number=idea,
                    voter_key=voter,
                    choice=choice,
                    urgency=urgency,
                    impact=impact,
                )
            )
        await s.flush()

    async def _open_actions(self, s: AsyncSession, rnd: RoundRow) -> None:
        goals = list(
            await s.scalars(select(GoalRow).where(GoalRow.round_id == rnd.id).order_by(GoalRow.number))
        )
        parts = [
            Part(
                PromptKey.GOAL_CARD,
                _goal_params(g),
                (ButtonSpec(ComponentId(rnd.id, "action", (str(g.number),)).encode(), "add_action"),),
            )
            for g in goals
        ]
        await self._post_chunked(
            s, rnd.id, Part(PromptKey.ACTIONS_OPEN, {"title": rnd.title, "goals": len(goals)}), parts
        )

    async def _summarise(self, s: AsyncSession, rnd: RoundRow) -> None:
        ideas = list(
            await s.scalars(
                select(IdeaRow)
                .where(IdeaRow.round_id == rnd.id, IdeaRow.rank.is_not(None))
                .order_by(IdeaRow.rank)
                .limit(5)
            )
        )
        goals = list(
            await s.scalars(select(GoalRow).where(GoalRow.round_id == rnd.id).order_by(GoalRow.number))
        )
        actions = list(
            await s.scalars(select(ActionRow).where(ActionRow.round_id == rnd.id).order_by(ActionRow.number))
        )
        goal_numbers = {g.id: g.number for g in goals}
        params = {
            "title": rnd.title,
            "purpose": rnd.purpose,
            "ideas": [
                {"label": i.number, "text": i.text, "score": round((i.score or 0) * 100)} for i in ideas
            ],
            "goals": [_goal_params(g) for g in goals],
            "actions": [
                {
                    "number": a.number,
                    "title": a.title,
                    "goal": goal_numbers.get(a.goal_id),
                    "owner": a.owner_name,
                    "due": a.due.isoformat(),
                }
                for a in actions
            ],
        }
        await post_everywhere(s, rnd.id, Message((Part(PromptKey.SUMMARY, params),)))

    # --- goals and actions --------------------------------------------------------------------

    async def _add_goal(self, s: AsyncSession, cmd: c.AddGoal) -> None:
        ctx = cmd.ctx
        rnd = await self._round(s, ctx, cmd.round_id)
        self._require_convener(rnd, ctx)
        self._require_phase(rnd, Phase.GOALS, Phase.ACTIONS)
        spec = validation.goal_from_form(cmd.values, self.clock.now().date())
        if spec.idea_number is not None:
            idea = await s.scalar(
                select(IdeaRow.id).where(IdeaRow.round_id == rnd.id, IdeaRow.number == spec.idea_number)
            )
            if idea is None:
                raise FormErrors({"idea": "unknown_idea"})
        number = 1 + await self._count(s, select(func.max(GoalRow.number)).where(GoalRow.round_id == rnd.id))
        goal = GoalRow(
            id=new_id(),
            round_id=rnd.id,
            number=number,
            idea_number=spec.idea_number,
            title=spec.title,
            outcome=spec.outcome,
            metric=spec.metric,
            unit=spec.unit,
            baseline=spec.baseline,
            target=spec.target,
            deadline=spec.deadline,
            pilot=spec.pilot,
            review_date=spec.review_date,
        )
        s.add(goal)
        await s.flush()
        await post_everywhere(s, rnd.id, Message((Part(PromptKey.GOAL_CARD, _goal_params(goal)),)))
        s.add(private_row(ctx, Message((Part(PromptKey.GOAL_RECORDED, {"number": number}),)), rnd.id))

    async def _add_action(self, s: AsyncSession, cmd: c.AddAction) -> None:
        ctx = cmd.ctx
        rnd = await self._round(s, ctx, cmd.round_id)
        self._require_convener(rnd, ctx)
        self._require_phase(rnd, Phase.ACTIONS)
        spec = validation.action_from_form(cmd.values, self.clock.now().date())
        goal = await s.scalar(
            select(GoalRow).where(GoalRow.round_id == rnd.id, GoalRow.number == spec.goal_number)
        )
        if goal is None:
            raise FormErrors({"goal": "unknown_goal"})
        number = 1 + await self._count(
            s, select(func.max(ActionRow.number)).where(ActionRow.round_id == rnd.id)
        )
        action = ActionRow(
            id=new_id(),
            round_id=rnd.id,
            goal_id=goal.id,
            number=number,
            title=spec.title,
            owner_name=spec.owner,
            owner_ref=None,
            due=spec.due,
            status="open",
        )
        s.add(action)
        await s.flush()
        await post_everywhere(s, rnd.id, self._action_card(rnd, action, goal), slot=f"action:{action.id}")
        s.add(private_row(ctx, Message((Part(PromptKey.ACTION_RECORDED, {"number": number}),)), rnd.id))

    def _action_card(self, rnd: RoundRow, action: ActionRow, goal: GoalRow) -> Message:
        buttons: tuple[ButtonSpec, ...] = ()
        if action.owner_name is None and rnd.phase == Phase.ACTIONS:
            buttons = (
                ButtonSpec(ComponentId(rnd.id, "take", (str(action.number),)).encode(), "take", "primary"),
            )
        params = {
            "number": action.number,
            "title": action.title,
            "goal": goal.number,
            "goal_title": goal.title,
            "owner": action.owner_name,
            "due": action.due.isoformat(),
        }
        return Message((Part(PromptKey.ACTION_CARD, params, buttons),))

    async def _volunteer(self, s: AsyncSession, cmd: c.Volunteer) -> None:
        ctx = cmd.ctx
        rnd = await self._round(s, ctx, cmd.round_id)
        self._require_phase(rnd, Phase.ACTIONS)
        if not self.is_convener(rnd, ctx):
            await self._require_joined(s, rnd, ctx.actor)
        action = await s.scalar(
            select(ActionRow).where(ActionRow.round_id == rnd.id, ActionRow.number == cmd.action)
        )
        if action is None:
            raise DomainError("unknown_action")
        if action.owner_name is not None:
            raise DomainError("action_taken_already", owner=action.owner_name)
        action.owner_name = ctx.actor.display_name or ctx.actor.user_id
        action.owner_ref = ctx.actor.key()
        goal = await s.get(GoalRow, action.goal_id)
        assert goal is not None
        await post_everywhere(s, rnd.id, self._action_card(rnd, action, goal), slot=f"action:{action.id}")
        s.add(
            private_row(
                ctx,
                Message((Part(PromptKey.ACTION_TAKEN, {"number": action.number, "title": action.title}),)),
                rnd.id,
            )
        )

    # --- information --------------------------------------------------------------------------

    async def _status(self, s: AsyncSession, cmd: c.Status) -> None:
        ctx = cmd.ctx
        rnd = await self.round_here(s, ctx)
        me = await self._participant(s, rnd, ctx.actor)
        mine = len(await self._mine(s, rnd, ctx.actor)) if me and rnd.phase == Phase.CONTRIBUTE else None
        ideas = await self._count(
            s,
            select(func.count())
            .select_from(IdeaRow)
            .where(IdeaRow.round_id == rnd.id, IdeaRow.status == "released"),
        )
        goals = await self._count(
            s, select(func.count()).select_from(GoalRow).where(GoalRow.round_id == rnd.id)
        )
        actions = await self._count(
            s, select(func.count()).select_from(ActionRow).where(ActionRow.round_id == rnd.id)
        )
        participants = await self._count(
            s, select(func.count()).select_from(ParticipantRow).where(ParticipantRow.round_id == rnd.id)
        )
        params = {
            "title": rnd.title,
            "phase": rnd.phase,
            "deadline": _fmt_time(await self._deadline(s, rnd)),
            "joined": me is not None,
            "mine": mine,
            "limit": rnd.settings["per_participant"],
            "participants": participants,
            "ideas": ideas,
            "goals": goals,
            "actions": actions,
            "convener": self.is_convener(rnd, ctx),
        }
        s.add(private_row(ctx, Message((Part(PromptKey.STATUS, params),)), rnd.id))

    async def _help(self, s: AsyncSession, cmd: c.Help) -> None:
        s.add(private_row(cmd.ctx, Message((Part(PromptKey.HELP, {"unknown": cmd.unknown}),))))

    # --- forms --------------------------------------------------------------------------------

    async def _form(
        self, s: AsyncSession, ctx: c.Context, name: str, round_id: str | None, arg: str | None
    ) -> Form:
        L = self.prompts.label
        rc = self.config.rounds
        if name == "start":
            self._require_convener(None, ctx)
            try:
                await self.round_here(s, ctx)
            except DomainError:
                pass
            else:
                raise DomainError("round_already_here")
            templates = tuple(Option(t, L("templates", t)) for t in rc.templates)
            fields: tuple[FormField, ...] = (
                FormField("title", L("fields", "title"), "text", max_length=200),
                FormField("purpose", L("fields", "purpose"), "long", max_length=2000),
                FormField(
                    "template",
                    L("fields", "template"),
                    "select",
                    options=templates,
                    initial=rc.default_template,
                ),
                FormField("contribute_minutes", L("fields", "contribute_minutes"), "number", required=False),
                FormField("vote_minutes", L("fields", "vote_minutes"), "number", required=False),
            )
            return self._make_form("-", "start", None, fields, self.prompts.render(PromptKey.START_INTRO, {}))
        rnd = await self._round(s, ctx, round_id)
        if name == "join":
            if await self._participant(s, rnd, ctx.actor) is not None:
                raise DomainError("already_joined")
            sectors = tuple(Option(x, L("sectors", x)) for x in rnd.settings["sectors"])
            fields = (FormField("sector", L("fields", "sector"), "select", required=False, options=sectors),)
            intro = self.prompts.render(PromptKey.CHARTER, {"title": rnd.title, "purpose": rnd.purpose})
            return self._make_form(rnd.id, "join", None, fields, intro)
        if name == "contribute":
            self._require_phase(rnd, Phase.CONTRIBUTE)
            await self._require_joined(s, rnd, ctx.actor)
            st = rnd.settings
            if len(await self._mine(s, rnd, ctx.actor)) >= st["per_participant"]:
                raise DomainError("quota_reached", limit=st["per_participant"])
            fields = (
                FormField(
                    "text",
                    L("fields", "idea"),
                    "long",
                    min_length=st["min_chars"],
                    max_length=st["max_chars"],
                ),
            )
            intro = self.prompts.render(
                PromptKey.CONTRIBUTE_INTRO, {"purpose": rnd.purpose, "max": st["max_chars"]}
            )
            return self._make_form(rnd.id, "contribute", None, fields, intro)
        if name == "rate":
            self._require_phase(rnd, Phase.VOTE)
            await self._require_joined(s, rnd, ctx.actor)
            number = _int(arg or "")
            scale = tuple(Option(str(n), L("scale", str(n))) for n in range(1, 6))
            fields = (
                FormField("urgency", L("fields", "urgency"), "select", required=False, options=scale),
                FormField("impact", L("fields", "impact"), "select", required=False, options=scale),
            )
            return self._make_form(
                rnd.id,
                "rate",
                str(number),
                fields,
                self.prompts.render(PromptKey.RATE_INTRO, {"label": number}),
            )
        if name == "goal":
            self._require_convener(rnd, ctx)
            self._require_phase(rnd, Phase.GOALS, Phase.ACTIONS)
            idea = str(_int(arg)) if arg else ""
            fields = (
                FormField("idea", L("fields", "goal_idea"), "number", required=False, initial=idea),
                FormField("title", L("fields", "goal_title"), "text", max_length=200),
                FormField("outcome", L("fields", "outcome"), "long", max_length=1000),
                FormField("metric", L("fields", "metric"), "text", max_length=200),
                FormField("unit", L("fields", "unit"), "text", max_length=50),
                FormField("baseline", L("fields", "baseline"), "number"),
                FormField("target", L("fields", "target"), "number"),
                FormField("deadline", L("fields", "deadline"), "date"),
                FormField("pilot", L("fields", "pilot"), "bool", initial="no"),
                FormField("review_date", L("fields", "review_date"), "date", required=False),
            )
            return self._make_form(
                rnd.id, "goal", None, fields, self.prompts.render(PromptKey.GOAL_INTRO, {})
            )
        if name == "action":
            self._require_convener(rnd, ctx)
            self._require_phase(rnd, Phase.ACTIONS)
            goal = str(_int(arg)) if arg else ""
            fields = (
                FormField("goal", L("fields", "action_goal"), "number", initial=goal),
                FormField("title", L("fields", "action_title"), "text", max_length=200),
                FormField("owner", L("fields", "owner"), "text", required=False, max_length=200),
                FormField("due", L("fields", "due"), "date"),
            )
            return self._make_form(
                rnd.id, "action", None, fields, self.prompts.render(PromptKey.ACTION_INTRO, {})
            )
        raise DomainError("unknown_form")

    def _make_form(
        self, round_id: str, name: str, arg: str | None, fields: tuple[FormField, ...], intro: str
    ) -> Form:
        args = (name, arg) if arg else (name,)
        return Form(
            form_id=ComponentId(round_id, "form", args).encode(),
            title=self.prompts.label("form_titles", name),
            submit=self.prompts.label("form_submit", name),
            intro=intro,
            fields=fields,
        )

    def _command_from_form(
        self, ctx: c.Context, name: str, rid: str | None, arg: str | None, values: dict[str, str]
    ) -> c.Command:
        if name == "start":
            spec = validation.round_from_form(values, list(self.config.rounds.templates))
            return c.StartRound(ctx, spec.title, spec.purpose, spec.template, spec.minutes)
        if rid is None:
            raise DomainError("unknown_form")
        if name == "join":
            return c.JoinRound(ctx, (values.get("sector") or "").strip() or None, rid)
        if name == "contribute":
            return c.Contribute(ctx, values.get("text") or "", rid)
        if name == "rate":
            urgency, impact = validation.rating_from_form(values)
            return c.RateIdea(ctx, rid, _int(arg or ""), urgency, impact)
        if name == "goal":
            return c.AddGoal(ctx, dict(values), rid)
        if name == "action":
            return c.AddAction(ctx, dict(values), rid)
        raise DomainError("unknown_form")


def _int(text: str) -> int:
    if not text.isdigit() or len(text) > 9:
        raise DomainError("unknown_button")
    return int(text)


def _median(values: list[int]) -> float | None:
    if not values:
        return None
    v = sorted(values)
    mid = len(v) // 2
    return float(v[mid]) if len(v) % 2 else (v[mid - 1] + v[mid]) / 2


def _fmt_time(value: dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else None


def _goal_params(g: GoalRow) -> dict[str, Any]:
    return {
        "number": g.number,
        "idea": g.idea_number,
        "title": g.title,
        "outcome": g.outcome,
        "metric": g.metric,
        "unit": g.unit,
        "baseline": _num(g.baseline),
        "target": _num(g.target),
        "deadline": g.deadline.isoformat(),
        "pilot": g.pilot,
        "review_date": g.review_date.isoformat() if g.review_date else None,
    }


def _num(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e15 else str(value)


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (v if isinstance(v, str | int | float | bool | list | dict | None) else str(v))
        for k, v in params.items()
    }


def _is_db_error(err: BaseException) -> bool:
    from sqlalchemy.exc import DBAPIError, OperationalError

    return isinstance(err, OperationalError | DBAPIError | ConnectionError | TimeoutError)
