"""DiscordChatPort: how the outbox relay reaches Discord (channel posts, edits, ephemeral follow-ups)."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import discord

from bot.messages import Attachment, Rendered
from bot.ports import DeliveryError
from bot.refs import ConversationRef, Platform

from . import render

log = logging.getLogger("convene.discord")

TOKEN_TTL = 15 * 60.0
ACK_WAIT = 3.5  # longest a follow-up waits for its interaction's first response
MAX_FILE = 10 * 1024 * 1024  # Discord's upload limit for bots in servers without boosts
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
    _started: dict[str, float] = field(default_factory=dict)

    def begin(self, token: str) -> None:
        self._events[token] = asyncio.Event()
        self._started.pop(token, None)  # re-inserted at the end: ``_started`` stays in time order
        self._started[token] = time.monotonic()
        self._prune()

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
        """Drop tokens older than 15 minutes: only the oldest are looked at (O(1) per click)."""
        cutoff = time.monotonic() - TOKEN_TTL
        while self._started:
            tok, at = next(iter(self._started.items()))
            if at >= cutoff:
                break
            del self._started[tok]
            self._events.pop(tok, None)


def _send_kwargs(part: render.Chunk, image: Attachment | None, **extra: Any) -> dict[str, Any]:
    """What every send carries: no mentions, no link embeds, the chunk's buttons, maybe the image."""
    kw: dict[str, Any] = {"allowed_mentions": render.NO_MENTIONS, "suppress_embeds": True, **extra}
    view = render.view_for(part.rows)
    if view is not None:
        kw["view"] = view
    file = _file(image)
    if file is not None:
        kw["file"] = file
    return kw


def _file(image: Attachment | None) -> discord.File | None:
    """A fresh ``discord.File`` per send (discord.py consumes it). Too large: left out, logged; the
    text still goes out (the results carry the same figures)."""
    if image is None:
        return None
    if len(image.data) > MAX_FILE:
        log.warning(
            "an image of %d bytes is over Discord's upload limit; sending the text only", len(image.data)
        )
        return None
    return discord.File(io.BytesIO(image.data), filename=image.filename)


def _error(err: discord.HTTPException) -> DeliveryError:
    if err.status in _PERMANENT:
        return DeliveryError(f"discord {err.status} {err.code}", permanent=True)
    return DeliveryError(f"discord {err.status} {err.code}")


class DiscordChatPort:
    """ChatPort for Discord. Needs a logged-in client (``attach``) before it can deliver; until then
    deliveries raise an ``offline`` DeliveryError, which the relay retries without counting an attempt.
    429s are retried inside discord.py; 401/403/404 are permanent. Channel posts and DMs carry the
    outbox row's key as an enforced nonce (one per chunk), so a post re-sent after a crash returns the
    message Discord already has instead of posting it twice."""

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
            raise DeliveryError("discord client not connected", offline=True)
        return self.client

    async def _send_chunks(self, channel: discord.abc.Messageable, message: Rendered, key: str | None) -> str:
        """Each chunk as a message; ``message.image`` goes with the first, as an attachment."""
        first = ""
        for i, part in enumerate(render.chunk(message)):
            # discord.py sends ``enforce_nonce`` with every nonce (Discord: at most 25 characters).
            nonce = f"{key[:20]}-{i}" if key else None
            kw = _send_kwargs(part, message.image if i == 0 else None, nonce=nonce)
            try:
                sent = await channel.send(part.content, **kw)
            except discord.HTTPException as err:
                raise _error(err) from None
            first = first or str(sent.id)
        return first

    async def post(self, to: ConversationRef, message: Rendered, *, key: str | None = None) -> str:
        client = self._client()
        return await self._send_chunks(client.get_partial_messageable(int(to.channel_id)), message, key)

    async def edit(self, to: ConversationRef, message_id: str, message: Rendered) -> None:
        client = self._client()
        parts = render.chunk(message)
        if len(parts) > 1:
            log.warning("an edited message is longer than one Discord message; showing the first part")
        part = parts[0]
        msg = client.get_partial_messageable(int(to.channel_id)).get_partial_message(int(message_id))
        view = render.view_for(part.rows)
        kw: dict[str, Any] = {}
        file = _file(message.image)
        if file is not None:
            kw["attachments"] = [file]  # replaces the old image; without one, attachments stay as they are
        try:
            await msg.edit(content=part.content, view=view, allowed_mentions=render.NO_MENTIONS, **kw)
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
                for i, part in enumerate(render.chunk(message)):
                    kw = _send_kwargs(part, message.image if i == 0 else None, ephemeral=True)
                    await webhook.send(part.content, **kw)
                return
            except discord.HTTPException as err:
                if err.status not in _PERMANENT:
                    raise _error(err) from None
                log.info("interaction token unusable (%s); sending a direct message instead", err.status)
        await self.send_direct(to.workspace_id, user_id, message)

    async def send_direct(
        self, workspace_id: str, user_id: str, message: Rendered, *, key: str | None = None
    ) -> str:
        client = self._client()
        if not user_id.isdigit():
            raise DeliveryError("not a discord user id", permanent=True)
        try:
            dm = await client.create_dm(discord.Object(int(user_id)))
        except discord.HTTPException as err:
            raise _error(err) from None
        return await self._send_chunks(dm, message, key)
