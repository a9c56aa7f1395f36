"""DiscordChatPort: how the outbox relay reaches Discord (channel posts, edits, ephemeral follow-ups)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import discord

from bot.messages import Rendered
from bot.ports import DeliveryError
from bot.refs import ConversationRef, Platform

from . import render

log = logging.getLogger("convene.discord")

TOKEN_TTL = 15 * 60.0
ACK_WAIT = 3.5  # longest a follow-up waits for its interaction's first response
_PERMANENT = (401, 403, 404)


def reply_handle(application_id: int | str, token: str) -> str:
    return f"{application_id}:{token}"


def parse_handle(handle: str | None) -> tuple[int, str] | None:
    if not handle:
        return None
    app_id, _, token = handle.partition(":")
    if not app_id.isdigit() or not token:
        return None
    return int(app_id), token


@dataclass
class Acks:
    """Interactions this process is answering. A follow-up must wait until the first response
    (defer or modal) is accepted: before that Discord has no webhook for the token."""

    _events: dict[str, asyncio.Event] = field(default_factory=dict)
    _replies: dict[str, asyncio.Event] = field(default_factory=dict)
    _started: dict[str, float] = field(default_factory=dict)

    def begin(self, token: str) -> None:
        self._events[token] = asyncio.Event()
        self._replies[token] = asyncio.Event()
        self._started[token] = time.monotonic()
        self._prune()

    def replied(self, token: str) -> None:
        ev = self._replies.get(token)
        if ev is not None:
            ev.set()

    async def wait_replied(self, token: str, timeout: float) -> bool:
        """Whether a private reply went out on ``token`` within ``timeout`` seconds."""
        ev = self._replies.get(token)
        if ev is None:
            return False
        try:
            await asyncio.wait_for(ev.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def done(self, token: str) -> None:
        ev = self._events.get(token)
        if ev is not None:
            ev.set()

    async def wait(self, token: str) -> None:
        ev = self._events.get(token)
        if ev is not None and not ev.is_set():
            try:
                await asyncio.wait_for(ev.wait(), ACK_WAIT)
            except TimeoutError:
                log.warning("interaction not acknowledged in time; following up anyway")

    def expired(self, token: str) -> bool:
        started = self._started.get(token)
        return started is not None and time.monotonic() - started > TOKEN_TTL - 5

    def _prune(self) -> None:
        cutoff = time.monotonic() - TOKEN_TTL
        for tok in [t for t, at in self._started.items() if at < cutoff]:
            self._started.pop(tok, None)
            self._events.pop(tok, None)
            self._replies.pop(tok, None)


def _error(err: discord.HTTPException) -> DeliveryError:
    if err.status in _PERMANENT:
        return DeliveryError(f"discord {err.status} {err.code}", permanent=True)
    return DeliveryError(f"discord {err.status} {err.code}")


class DiscordChatPort:
    """ChatPort for Discord. Needs a logged-in client (``attach``) before it can deliver; the relay
    retries until then. 429s are retried inside discord.py; 401/403/404 are permanent."""

    platform = Platform.DISCORD

    def __init__(self, client: discord.Client | None = None, acks: Acks | None = None) -> None:
        self.client = client
        self.acks = acks or Acks()

    def attach(self, client: discord.Client) -> None:
        self.client = client

    def escape(self, text: str) -> str:
        return render.escape(text)

    def _client(self) -> discord.Client:
        if self.client is None or self.client.is_closed() or self.client.user is None:
            raise DeliveryError("discord client not connected")
        return self.client

    async def _send_chunks(self, channel: discord.abc.Messageable, message: Rendered) -> str:
        first = ""
        for part in render.chunk(message):
            view = render.view_for(part.rows)
            try:
                if view is None:
                    sent = await channel.send(
                        part.content, allowed_mentions=render.NO_MENTIONS, suppress_embeds=True
                    )
                else:
                    sent = await channel.send(
                        part.content, view=view, allowed_mentions=render.NO_MENTIONS, suppress_embeds=True
                    )
            except discord.HTTPException as err:
                raise _error(err) from None
            first = first or str(sent.id)
        return first

    async def post(self, to: ConversationRef, message: Rendered) -> str:
        client = self._client()
        return await self._send_chunks(client.get_partial_messageable(int(to.channel_id)), message)

    async def edit(self, to: ConversationRef, message_id: str, message: Rendered) -> None:
        client = self._client()
        parts = render.chunk(message)
        if len(parts) > 1:
            log.warning("an edited message is longer than one Discord message; showing the first part")
        part = parts[0]
        msg = client.get_partial_messageable(int(to.channel_id)).get_partial_message(int(message_id))
        view = render.view_for(part.rows)
        try:
            await msg.edit(
                content=part.content,
                view=view,
                allowed_mentions=render.NO_MENTIONS,
            )
        except discord.HTTPException as err:
            raise _error(err) from None

    async def post_private(
        self, to: ConversationRef, user_id: str, message: Rendered, reply_handle: str | None
    ) -> None:
        """An ephemeral follow-up on the person's interaction; a DM when there is no usable
        token (missing, expired, unknown). Never a public reply."""
        client = self._client()
        handle = parse_handle(reply_handle)
        if handle is not None and not self.acks.expired(handle[1]):
            app_id, token = handle
            await self.acks.wait(token)
            # An application webhook (type 3), as ``Interaction.followup`` builds it: only these
            # can send ephemeral messages.
            webhook = discord.Webhook.from_state(
                data={"id": app_id, "type": 3, "token": token},
                state=client._connection,
            )
            try:
                for part in render.chunk(message):
                    view = render.view_for(part.rows)
                    if view is None:
                        await webhook.send(
                            part.content,
                            ephemeral=True,
                            allowed_mentions=render.NO_MENTIONS,
                            suppress_embeds=True,
                        )
                    else:
                        await webhook.send(
                            part.content,
                            view=view,
                            ephemeral=True,
                            allowed_mentions=render.NO_MENTIONS,
                            suppress_embeds=True,
                        )
                self.acks.replied(token)
                return
            except discord.HTTPException as err:
                if err.status not in _PERMANENT:
                    raise _error(err) from None
                log.info("interaction token unusable (%s); sending a direct message instead", err.status)
        await self.send_direct(to.workspace_id, user_id, message)

    async def send_direct(self, workspace_id: str, user_id: str, message: Rendered) -> str:
        client = self._client()
        if not user_id.isdigit():
            raise DeliveryError("not a discord user id", permanent=True)
        try:
            dm = await client.create_dm(discord.Object(int(user_id)))
        except discord.HTTPException as err:
            raise _error(err) from None
        return await self._send_chunks(dm, message)
