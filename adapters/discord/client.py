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
from dataclasses import dataclass, field
from typing import Any, cast

import discord
from discord import app_commands

from bot.config import DiscordConfig
from bot.domain.errors import DomainError
from bot.forms import Form
from bot.ids import ComponentId
from bot.messages import Button
from bot.prompts import PromptKey, Prompts
from bot.refs import ConversationRef, Platform, UserRef
from bot.sanitize import display_name
from bot.service.commands import Context
from bot.service.core import Convene, ServiceUnavailable
from bot.service.textcmd import run_text

from . import render
from .port import Acks, reply_handle

log = logging.getLogger("convene.discord")

SUBCOMMANDS = (
    "start",
    "join",
    "contribute",
    "status",
    "next",
    "goal",
    "action",
    "close",
    "cancel",
    "link",
    "help",
)
FORM_SUBCOMMANDS = frozenset({"start", "join", "contribute", "goal", "action"})
FORM_VERBS = frozenset({"join", "contribute", "rate", "goal", "action"})
CORE_TIMEOUT = 2.5  # a form must be fetched before Discord's 3 s; otherwise defer and apologise
PAGE_PREFIX = "cvp"
_PART = r"[0-9A-Za-z_.-]{1,40}"  # one part of a ComponentId (bot.ids), "-" included
# ``cv:<round>:<verb>[:<arg>...]``; a DynamicItem template is matched with ``fullmatch``.
ROUND_TEMPLATE = rf"cv:(?P<round>{_PART}):(?P<verb>{_PART})(?P<args>(?::{_PART})*)"
PAGE_TEMPLATE = r"cvp:(?P<page>\d{1,2}):(?P<form>cv:.+)"
_PAGE = re.compile(PAGE_TEMPLATE)
DRAFT_TTL = 15 * 60.0
ANSWERED_BY = "convene.answered_by"  # Interaction.extras key: the path that took the interaction


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
        kw.update(overrides)
        super().__init__(**kw)
        self.config = config
        self.prompts = prompts
        self.core = core
        self.acks = acks or Acks()
        self.tree = app_commands.CommandTree(self)
        self.tree.on_error = self._on_tree_error  # type: ignore[method-assign]
        self.tree.add_command(build_group(prompts))
        self._drafts: dict[tuple[str, str], _Draft] = {}
        self.core_timeout = CORE_TIMEOUT

    async def setup_hook(self) -> None:
        self.add_dynamic_items(*DYNAMIC_ITEMS)

    # --- people and places --------------------------------------------------------------------

    def is_convener(self, user: discord.abc.User) -> bool:
        conveners = self.config.conveners
        if str(user.id) in conveners.user_ids:
            return True
        role_ids = {str(r.id) for r in getattr(user, "roles", ())}
        role_ids |= {str(r) for r in getattr(user, "_roles", ())}
        return bool(role_ids & set(conveners.role_ids))

    def context(self, interaction: discord.Interaction) -> Context:
        workspace = str(interaction.guild_id) if interaction.guild_id else "@me"
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
        finally:
            self.acks.done(interaction.token)

    async def _guarded(self, interaction: discord.Interaction, work: Any) -> None:
        """Run ``work`` (a coroutine) so that nothing escapes as a traceback to the person."""
        self.acks.begin(interaction.token)
        try:
            await work
        except ServiceUnavailable:
            await self.say(interaction, "service_unavailable")
        except TimeoutError:
            await self.say(interaction, "busy_try_again")
        except Exception:
            log.exception("discord interaction failed")
            await self.say(interaction, "internal_error")
        finally:
            self.acks.done(interaction.token)

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
        elif sub in FORM_SUBCOMMANDS:
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
        if verb in FORM_VERBS:
            await self._guarded(interaction, self._open(interaction, action_id))
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
        data: Any = interaction.data or {}
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
    """The same client over ``config.shard_count`` shards (large deployments)."""


def client_class(config: DiscordConfig) -> type[ConveneClient]:
    return ShardedConveneClient if config.shard_count else ConveneClient


def build_group(prompts: Prompts) -> app_commands.Group:
    """``/convene`` and its subcommands. Descriptions come from ``labels.yaml`` (``commands``)."""

    def describe(name: str) -> str:
        return prompts.label("commands", name)[:100] or name

    group = app_commands.Group(name="convene", description=describe("convene"), guild_only=True)

    def plain(sub: str) -> app_commands.Command[Any, Any, None]:
        async def callback(interaction: discord.Interaction) -> None:
            await cast(ConveneClient, interaction.client).on_command(interaction, sub)

        return app_commands.Command(name=sub, description=describe(sub), callback=callback)

    async def link(interaction: discord.Interaction, code: app_commands.Range[str, 1, 40]) -> None:
        await cast(ConveneClient, interaction.client).on_command(interaction, "link", code)

    async def goal(
        interaction: discord.Interaction, idea: app_commands.Range[int, 1, 999_999] | None = None
    ) -> None:
        arg = str(idea) if idea is not None else ""
        await cast(ConveneClient, interaction.client).on_command(interaction, "goal", arg)

    async def action(
        interaction: discord.Interaction, goal: app_commands.Range[int, 1, 999_999] | None = None
    ) -> None:
        arg = str(goal) if goal is not None else ""
        await cast(ConveneClient, interaction.client).on_command(interaction, "action", arg)

    special: dict[str, Any] = {
        "link": app_commands.describe(code=describe("option_code"))(link),
        "goal": app_commands.describe(idea=describe("option_idea"))(goal),
        "action": app_commands.describe(goal=describe("option_goal"))(action),
    }
    for sub in SUBCOMMANDS:
        if sub in special:
            group.add_command(
                app_commands.Command(name=sub, description=describe(sub), callback=special[sub])
            )
        else:
            group.add_command(plain(sub))
    return group
