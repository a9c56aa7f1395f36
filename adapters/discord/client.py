"""The discord.py client: `/convene` commands, buttons and modals, all turned into core calls.

Every interaction gets its first response at once: a modal when the core returns a form, otherwise
a deferral (``defer(ephemeral=True, thinking=True)`` for commands and modal submits, a silent
``defer()`` for buttons). The core's private reply then arrives through the outbox as an ephemeral
follow-up on the interaction's token (see :class:`~adapters.discord.port.DiscordChatPort`).

Button clicks are decoded by two :class:`discord.ui.DynamicItem` classes registered in
``setup_hook`` (:class:`RoundButton` for ``cv:<round>:<verb>:<args>``, :class:`ContinueButton` for
the goal form's ``cvp:<page>:<form id>``): all their state is in the ``custom_id``, so they work
after a restart. ``on_interaction`` answers modal submits and, as a fallback, any click no template
took (a malformed or foreign id), so nobody is ever left without an answer.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import discord
from discord import app_commands

from adapters.faults import fault
from bot.config import DiscordConfig
from bot.domain.accountability import DISCORD_DM
from bot.domain.commands import Context
from bot.domain.errors import DomainError
from bot.forms import Form
from bot.ids import ComponentId
from bot.messages import Button, Card
from bot.metrics import AckKind
from bot.prompts import PromptKey, Prompts
from bot.refs import ConversationRef, Platform, UserRef
from bot.sanitize import display_name
from bot.service.core import Convene, ServiceUnavailable
from bot.service.handlers import build_registry
from bot.service.registry import Arg, Registry
from bot.service.textcmd import run_text

from . import render
from .port import Acks, reply_handle
from .shape import answerable, command_problem, frame_problem, interaction_problem

log = logging.getLogger("convene.discord")

CORE_TIMEOUT = 2.5  # a form must be fetched before Discord's 3 s; otherwise defer and apologise
PAGE_PREFIX = "cvp"
_PART = r"[0-9A-Za-z_.-]{1,40}"  # one part of a ComponentId (bot.ids), "-" included
# ``cv:<round>:<verb>[:<arg>...]``; a DynamicItem template is matched with ``fullmatch``.
ROUND_TEMPLATE = rf"cv:(?P<round>{_PART}):(?P<verb>{_PART})(?P<args>(?::{_PART})*)"
PAGE_TEMPLATE = r"cvp:(?P<page>\d{1,2}):(?P<form>cv:.+)"
_PAGE = re.compile(PAGE_TEMPLATE)
DRAFT_TTL = 15 * 60.0
ANSWERED_BY = "convene.answered_by"  # Interaction.extras key: the path that took the interaction
# Gateway events whose failure must end the connection (the supervisor starts a fresh one); any
# other event discord.py cannot parse is logged and dropped, and an interaction is still answered.
SESSION_EVENTS = frozenset({"READY", "RESUMED"})


def intents() -> discord.Intents:
    """Only ``guilds``: slash commands, buttons and modals need no privileged intent."""
    value = discord.Intents.none()
    value.guilds = True
    return value


def take(interaction: discord.Interaction, by: str) -> bool:
    """Claim ``interaction`` for one path (a DynamicItem callback or ``on_interaction``'s
    fallback): True for the first caller only, so exactly one of them answers it."""
    if ANSWERED_BY in interaction.extras:
        return False
    interaction.extras[ANSWERED_BY] = by
    return True


class RoundButton(discord.ui.DynamicItem[discord.ui.Item[Any]], template=ROUND_TEMPLATE):
    """Every round button (``cv:<round>:<verb>:<args>``), rebuilt by discord.py from the clicked
    message's ``custom_id``. The verb decides the first response: a form verb is answered with the
    modal (it must be the first response), anything else (votes ``v``, ``wd``, ``take``, ``mine``)
    gets a silent ``defer()`` before the core is even called."""

    def __init__(self, item: discord.ui.Item[Any], verb: str) -> None:
        super().__init__(item)
        self.verb = verb

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> RoundButton:
        return cls(item, match["verb"])

    async def callback(self, interaction: discord.Interaction) -> None:
        client = interaction.client
        if isinstance(client, ConveneClient) and take(interaction, "RoundButton"):
            await client.on_button(interaction, self.custom_id, self.verb)


class ContinueButton(discord.ui.DynamicItem[discord.ui.Item[Any]], template=PAGE_TEMPLATE):
    """The private "continue" button between the pages of a long form (``cvp:<page>:<form id>``):
    it opens the next modal, so it is never deferred first."""

    def __init__(self, item: discord.ui.Item[Any]) -> None:
        super().__init__(item)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ContinueButton:
        return cls(item)

    async def callback(self, interaction: discord.Interaction) -> None:
        client = interaction.client
        if isinstance(client, ConveneClient) and take(interaction, "ContinueButton"):
            await client.on_continue(interaction, self.custom_id)


DYNAMIC_ITEMS = (RoundButton, ContinueButton)
ACK_KINDS: dict[discord.InteractionType, AckKind] = {
    discord.InteractionType.application_command: "command",
    discord.InteractionType.component: "click",
    discord.InteractionType.modal_submit: "form",
}


@dataclass
class _Draft:
    form: Form
    values: dict[str, str] = field(default_factory=dict)
    at: float = 0.0


class ConveneClient(discord.Client):
    """A bare client (no prefix commands): guilds intent only, no message cache, no chunking, and
    ``AllowedMentions.none()`` by default."""

    def __init__(
        self,
        config: DiscordConfig,
        prompts: Prompts,
        *,
        core: Convene | None = None,
        acks: Acks | None = None,
        **overrides: Any,
    ) -> None:
        kw: dict[str, Any] = {
            "intents": intents(),
            "allowed_mentions": discord.AllowedMentions.none(),
            "max_messages": None,
            "chunk_guilds_at_startup": False,
            "member_cache_flags": discord.MemberCacheFlags.none(),
        }
        if config.shard_count and isinstance(self, discord.AutoShardedClient):
            kw["shard_count"] = config.shard_count
            if config.shard_ids is not None:  # this worker's share; the others run the rest
                kw["shard_ids"] = list(config.shard_ids)
        kw.update(overrides)
        super().__init__(**kw)
        self.config = config
        self.prompts = prompts
        self.core = core
        self.acks = acks or Acks()
        self.tree = app_commands.CommandTree(self)
        self.tree.on_error = self._on_tree_error  # type: ignore[method-assign]
        self.tree.interaction_check = self._command_check  # type: ignore[method-assign]
        self.registry = core.registry if core is not None else build_registry()
        self.tree.add_command(build_group(prompts, self.registry))
        self._drafts: dict[tuple[str, str], _Draft] = {}
        self.core_timeout = CORE_TIMEOUT
        self._answering: set[asyncio.Task[None]] = set()

    async def setup_hook(self) -> None:
        self.add_dynamic_items(*DYNAMIC_ITEMS)

    # --- frames discord.py cannot read ----------------------------------------------------------

    def _get_state(self, **options: Any) -> Any:
        """discord.py's connection state, with every gateway event parser but READY/RESUMED guarded:
        an exception in a parser used to end ``Client.start()`` (and with it the whole process)."""
        state = super()._get_state(**options)
        for event, parse in list(state.parsers.items()):
            if event not in SESSION_EVENTS:
                state.parsers[event] = self._guard_parser(event, parse)
        return state

    def _guard_parser(self, event: str, parse: Callable[[Any], None]) -> Callable[[Any], None]:
        def guarded(data: Any) -> None:
            if event == "INTERACTION_CREATE":
                if not answerable(data):
                    # Nobody could answer it (Discord takes an answer only on its id and token), and
                    # discord.py would carry an id or token of any type into every handler.
                    log.info("discord: dropped an interaction with no id, token or type to answer")
                    return
                if (why := frame_problem(data)) is not None:
                    log.warning("discord: refused an interaction: %s", why)
                    self._answer_unreadable(data)
                    return
            try:
                parse(data)
            except Exception as err:
                log.warning("discord: dropped a %s event it could not read (%s)", event, fault(err))
                if event == "INTERACTION_CREATE":
                    self._answer_unreadable(data)

        return guarded

    def _answer_unreadable(self, data: dict[str, Any]) -> None:
        """Tell the sender of an interaction discord.py could not parse: a bare interaction (only
        its id, token and type, which `answerable` checked) is enough to answer it."""
        bare = {
            "id": data["id"],
            "token": data["token"],
            "type": data["type"],
            "version": 1,
            "application_id": str(self.application_id or 0),
            "attachment_size_limit": 0,
        }
        interaction = discord.Interaction(data=bare, state=self._connection)  # type: ignore[arg-type]
        task = asyncio.get_running_loop().create_task(self.say(interaction, "malformed_request"))
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        """An exception no handler took: logged without a traceback or payload (discord.py's
        default prints both)."""
        err = sys.exc_info()[1]
        log.error("discord: %s failed (%s)", event_method, fault(err) if err else "no exception")

    async def _command_check(self, interaction: discord.Interaction) -> bool:
        """The command tree's gate (``interaction_check``): a command whose data the tree cannot
        read is answered here, before the tree indexes it in a task of its own."""
        if interaction.type is not discord.InteractionType.application_command:
            return False  # autocomplete: no convene command offers any
        why = command_problem(interaction.data)
        if why is None:
            return True
        log.info("discord: refused a command: %s", why)
        await self._guarded(interaction, self._refuse(interaction, "malformed_request", thinking=True))
        return False

    # --- people and places --------------------------------------------------------------------

    def is_convener(self, user: discord.abc.User) -> bool:
        conveners = self.config.conveners
        if str(user.id) in conveners.user_ids:
            return True
        role_ids = {str(r.id) for r in getattr(user, "roles", ())}
        role_ids |= {str(r) for r in getattr(user, "_roles", ())}
        return bool(role_ids & set(conveners.role_ids))

    def context(self, interaction: discord.Interaction) -> Context:
        workspace = str(interaction.guild_id) if interaction.guild_id else DISCORD_DM
        user = interaction.user
        return Context(
            actor=UserRef(Platform.DISCORD, workspace, str(user.id), display_name(user.display_name)),
            where=ConversationRef(Platform.DISCORD, workspace, str(interaction.channel_id or 0)),
            reply_handle=reply_handle(interaction.application_id, interaction.token),
            request_id=f"discord:{interaction.id}",
            is_convener=self.is_convener(user),
        )

    def _core(self) -> Convene:
        if self.core is None:
            raise ServiceUnavailable("core not attached")
        return self.core

    # --- first responses ----------------------------------------------------------------------

    async def _defer(self, interaction: discord.Interaction, *, thinking: bool) -> None:
        if not interaction.response.is_done():
            if thinking:
                await interaction.response.defer(ephemeral=True, thinking=True)
            else:
                await interaction.response.defer()
        self.acks.done(interaction.token)

    async def say(self, interaction: discord.Interaction, code: str) -> None:
        """An error the core cannot queue (storage down, a bug): rendered from prompts, sent here."""
        text = self.prompts.render(PromptKey.ERROR, {"code": code})
        try:
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True, allowed_mentions=render.NO_MENTIONS)
            else:
                await interaction.response.send_message(
                    text, ephemeral=True, allowed_mentions=render.NO_MENTIONS
                )
        except discord.HTTPException as err:
            log.warning("could not tell the person about %s: %s", code, err.status)
        except Exception as err:  # an answer discord.py could not read back, for one
            log.warning("could not tell the person about %s (%s)", code, fault(err))
        finally:
            self.acks.done(interaction.token)

    async def _guarded(self, interaction: discord.Interaction, work: Any) -> None:
        """Run ``work`` (a coroutine) so that nothing escapes as a traceback to the person. An
        interaction that must not reach the core (`interaction_problem`) is refused here."""
        self.acks.begin(interaction.token)
        try:
            why = interaction_problem(interaction)
            if why is None:
                await work
            else:
                log.info("discord: refused an interaction: %s", why)
                await self.say(interaction, "malformed_request")
        except ServiceUnavailable:
            await self.say(interaction, "service_unavailable")
        except TimeoutError:
            await self.say(interaction, "busy_try_again")
        except Exception as err:
            log.error("discord interaction failed: %s", fault(err))
            await self.say(interaction, "internal_error")
        finally:
            work.close()  # when it never ran (refused): no "never awaited" warning
            self.acks.done(interaction.token)
            self._count_ack(interaction)

    def _count_ack(self, interaction: discord.Interaction) -> None:
        kind = ACK_KINDS.get(interaction.type)
        if self.core is not None and kind is not None and interaction.response.is_done():
            self.core.metrics.ack("discord", kind)

    async def _form_or_defer(self, interaction: discord.Interaction, fetch: Any) -> None:
        async with asyncio.timeout(self.core_timeout):
            form = await fetch
        if isinstance(form, Form):
            await self.send_form(interaction, form, 1)
        else:  # the core queued a private refusal
            await self._defer(interaction, thinking=interaction.type != discord.InteractionType.component)

    # --- commands -----------------------------------------------------------------------------

    async def on_command(self, interaction: discord.Interaction, sub: str, arg: str = "") -> None:
        await self._guarded(interaction, self._command(interaction, sub, arg))

    async def _command(self, interaction: discord.Interaction, sub: str, arg: str) -> None:
        ctx = self.context(interaction)
        core = self._core()
        text = f"{sub} {arg}".strip()
        if interaction.guild_id is None:
            await self._defer(interaction, thinking=True)
            await core.refuse(ctx, DomainError("direct_message"))
        elif self.registry.text_opens_form(sub):
            await self._form_or_defer(interaction, run_text(core, ctx, text))
        else:
            await self._defer(interaction, thinking=True)
            await run_text(core, ctx, text)

    async def _on_tree_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        log.info("unreadable command: %s", type(error).__name__)
        await self._guarded(interaction, self._refuse(interaction, "malformed_request", thinking=True))

    async def _refuse(self, interaction: discord.Interaction, code: str, *, thinking: bool) -> None:
        await self._defer(interaction, thinking=thinking)
        await self._core().refuse(self.context(interaction), DomainError(code))

    # --- buttons ------------------------------------------------------------------------------

    async def on_button(
        self, interaction: discord.Interaction, action_id: str, verb: str | None = None
    ) -> None:
        """A click on ``action_id`` (``verb`` as the template read it; decoded here when not given)."""
        if verb is None:
            cid = ComponentId.decode(action_id)
            verb = cid.verb if cid is not None else None
        if verb is not None and self.registry.verb_opens_form(verb):
            await self._guarded(interaction, self._open(interaction, action_id))
        elif verb is not None and self.registry.verb_answers_card(verb):
            await self._guarded(interaction, self._card(interaction, action_id, verb))
        else:
            await self._guarded(interaction, self._press(interaction, action_id))

    async def _open(self, interaction: discord.Interaction, action_id: str) -> None:
        # A modal must be the first response: fetch the form (in time), then show it.
        await self._form_or_defer(interaction, self._core().press(self.context(interaction), action_id))

    async def _press(self, interaction: discord.Interaction, action_id: str) -> None:
        # Votes and the rest: acknowledge silently first (nothing else before it); the confirmation
        # (or the core's refusal of an unknown or malformed id) follows privately.
        await self._defer(interaction, thinking=False)
        core = self._core()
        ctx = self.context(interaction)
        form = await core.press(ctx, action_id)
        if form is not None:  # not expected for these verbs; never leave the person without an answer
            await core.refuse(ctx, DomainError("unknown_button"))

    async def _card(self, interaction: discord.Interaction, action_id: str, verb: str) -> None:
        """A deck click: its answer is a private card, sent as the interaction's first response
        (an update of the ephemeral card clicked, or a new ephemeral message for a click on a
        public post). Should the core take longer than Discord's 3 s allow, the interaction is
        deferred first and the card follows as an edit of the original response."""
        route = self.registry.verb(verb)
        # Only an ephemeral card is replaced: a public message is never rewritten with a private one.
        ephemeral = interaction.message is not None and interaction.message.flags.ephemeral
        replace = bool(route and route.button and route.button.card == "replace") and ephemeral
        task = asyncio.ensure_future(self._core().press(self.context(interaction), action_id))
        done, _ = await asyncio.wait({task}, timeout=self.core_timeout)
        if not done:
            if replace:
                await interaction.response.defer()  # DEFERRED_UPDATE_MESSAGE: the card stays as it is
            else:
                await interaction.response.defer(ephemeral=True, thinking=True)
            self.acks.done(interaction.token)
        answer = await task
        if not isinstance(answer, Card):  # not expected for these verbs; never leave the person unanswered
            if not interaction.response.is_done():
                await self._defer(interaction, thinking=False)
            if answer is not None:
                await self._core().refuse(self.context(interaction), DomainError("unknown_button"))
            return
        part = render.card(self.prompts.render_message(answer.message, render.card_escape))
        view = render.view_for(part.rows)
        if interaction.response.is_done():
            await interaction.edit_original_response(
                content=part.content, view=view, allowed_mentions=render.NO_MENTIONS
            )
        elif answer.replace and replace:
            await interaction.response.edit_message(
                content=part.content, view=view, allowed_mentions=render.NO_MENTIONS
            )
        else:
            kw: dict[str, Any] = {"view": view} if view is not None else {}
            await interaction.response.send_message(
                part.content, ephemeral=True, allowed_mentions=render.NO_MENTIONS, suppress_embeds=True, **kw
            )
        self.acks.done(interaction.token)

    # --- forms (modals) -----------------------------------------------------------------------

    def _page_id(self, form: Form, page: int, total: int) -> str:
        if total == 1:
            return form.form_id
        return f"{PAGE_PREFIX}:{page}:{form.form_id}"

    async def send_form(self, interaction: discord.Interaction, form: Form, page: int) -> None:
        pages = render.form_pages(form)
        page = max(1, min(page, len(pages)))
        current = pages[page - 1]
        key = (str(interaction.user.id), form.form_id)
        draft = self._drafts.get(key)
        if len(pages) > 1 and (draft is None or page == 1):
            draft = self._drafts[key] = _Draft(form, at=asyncio.get_running_loop().time())
        initials = dict(draft.values) if draft else {}
        title = form.title if len(pages) == 1 else f"{form.title} ({page}/{len(pages)})"
        modal = render.FormModal(title, self._page_id(form, page, len(pages)), current, initials)
        await interaction.response.send_modal(modal)
        self.acks.done(interaction.token)

    async def on_continue(self, interaction: discord.Interaction, custom_id: str) -> None:
        await self._guarded(interaction, self._continue(interaction, custom_id))

    async def _continue(self, interaction: discord.Interaction, custom_id: str) -> None:
        m = _PAGE.fullmatch(custom_id)
        cid = ComponentId.decode(m.group("form")) if m else None
        if m is None or cid is None or cid.verb != "form" or not cid.args:
            await self._refuse(interaction, "unknown_button", thinking=False)
            return
        ctx = self.context(interaction)
        name, arg = cid.args[0], (cid.args[1] if len(cid.args) > 1 else None)
        rid = None if cid.round_id == "-" else cid.round_id
        async with asyncio.timeout(self.core_timeout):
            form = await self._core().open_form(ctx, name, round_id=rid, arg=arg)
        if form is None:
            await self._defer(interaction, thinking=False)
            return
        await self.send_form(interaction, form, int(m.group("page")))

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """Modal submits (decoded from their ``custom_id``, restart-safe), and the fallback for
        clicks: one that a DynamicItem callback took is left alone; any other (an id no template
        accepts, such as ``cv:!!:x`` or a foreign one) still gets a private answer from the core.

        discord.py schedules the DynamicItem task before this event's task (``parse_interaction_create``
        calls ``ViewStore.dispatch_view`` first), and that task reaches the item's callback without
        suspending, so by the time this runs the callback has already claimed its interaction.
        Slash commands go through the command tree."""
        data: Any = interaction.data if isinstance(interaction.data, dict) else {}
        custom_id = data.get("custom_id")
        if interaction.type == discord.InteractionType.component:
            if not take(interaction, "on_interaction"):
                return  # a DynamicItem callback is answering it
            if not isinstance(custom_id, str):
                await self._guarded(interaction, self._refuse(interaction, "unknown_button", thinking=False))
            elif custom_id.startswith(f"{PAGE_PREFIX}:"):
                await self.on_continue(interaction, custom_id)
            else:  # the core decodes it again and refuses what it cannot read
                await self.on_button(interaction, custom_id)
        elif interaction.type == discord.InteractionType.modal_submit:
            await self._guarded(interaction, self._modal_submit(interaction, custom_id, dict(data)))

    async def _modal_submit(
        self, interaction: discord.Interaction, custom_id: Any, data: dict[str, Any]
    ) -> None:
        if not isinstance(custom_id, str):
            await self._refuse(interaction, "malformed_request", thinking=True)
            return
        values = render.modal_values(data.get("components"))
        user = str(interaction.user.id)
        m = _PAGE.fullmatch(custom_id)
        if m is not None:
            form_id, page = m.group("form"), int(m.group("page"))
            self._prune_drafts()
            draft = self._drafts.get((user, form_id))
            total = len(render.form_pages(draft.form)) if draft else page
            if draft is not None:
                draft.values.update(values)
            if draft is not None and page < total:
                nxt = f"{PAGE_PREFIX}:{page + 1}:{form_id}"
                label = self.prompts.label("buttons", "continue")
                button = Button(nxt, label, "primary")
                view = render.view_for(((button,),))
                assert view is not None
                await interaction.response.send_message(
                    render.fit(render.intro_text(draft.form.intro), render.MAX_CONTENT) or draft.form.title,
                    view=view,
                    ephemeral=True,
                    allowed_mentions=render.NO_MENTIONS,
                )
                self.acks.done(interaction.token)
                return
            if draft is not None:
                values = draft.values
                self._drafts.pop((user, form_id), None)
            custom_id = form_id
        await self._defer(interaction, thinking=True)
        await self._core().submit_form(self.context(interaction), custom_id, values)

    def _prune_drafts(self) -> None:
        now = asyncio.get_running_loop().time()
        for key in [k for k, d in self._drafts.items() if now - d.at > DRAFT_TTL]:
            self._drafts.pop(key, None)


class ShardedConveneClient(ConveneClient, discord.AutoShardedClient):
    """The same client over ``config.shard_count`` shards (large deployments); with
    ``config.shard_ids`` only those, so N workers split the gateway between them. Interactions
    reach the worker whose shard holds their guild; replies go out through the shared outbox."""


def client_class(config: DiscordConfig) -> type[ConveneClient]:
    return ShardedConveneClient if config.shard_count else ConveneClient


def build_group(prompts: Prompts, registry: Registry) -> app_commands.Group:
    """``/convene`` and one subcommand per text route of the registry, with its one option (if any).
    Descriptions come from ``labels.yaml`` (``commands``)."""

    def describe(name: str) -> str:
        return prompts.label("commands", name)[:100] or name

    group = app_commands.Group(name="convene", description=describe("convene"), guild_only=True)
    for route in registry.subcommands():
        assert route.text is not None
        sub, arg = route.text.name, route.text.arg
        callback = _callback(sub, arg)
        if arg is not None:
            callback = app_commands.rename(value=arg.name)(callback)
            callback = app_commands.describe(value=describe(f"option_{arg.name}"))(callback)
        group.add_command(app_commands.Command(name=sub, description=describe(sub), callback=callback))
    return group


def _callback(sub: str, arg: Arg | None) -> Any:
    """A command callback whose signature tells discord.py the option's type (an option is a
    parameter, so each kind has its own function)."""

    async def run(interaction: discord.Interaction, value: object = None) -> None:
        text = "" if value is None else str(value)
        await cast(ConveneClient, interaction.client).on_command(interaction, sub, text)

    if arg is None:

        async def bare(interaction: discord.Interaction) -> None:
            await run(interaction)

        return bare
    if arg.kind == "str":

        async def text(interaction: discord.Interaction, value: app_commands.Range[str, 1, 40]) -> None:
            await run(interaction, value)

        return text
    if arg.required:

        async def number(
            interaction: discord.Interaction, value: app_commands.Range[int, 1, 999_999]
        ) -> None:
            await run(interaction, value)

        return number

    async def maybe_number(
        interaction: discord.Interaction, value: app_commands.Range[int, 1, 999_999] | None = None
    ) -> None:
        await run(interaction, value)

    return maybe_number
