"""The ports the core talks through. Adapters implement ChatPort; tests use fakes of these."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from bot.messages import Rendered
from bot.refs import ConversationRef, Platform


class DeliveryError(Exception):
    """An adapter could not deliver. ``permanent`` (401/403, unknown channel) is never retried;
    ``retry_after`` (a 429's Retry-After) is honoured before the next attempt; ``offline`` (our
    client is not connected yet, or reconnecting) is retried shortly and never counts as an attempt."""

    def __init__(
        self,
        reason: str,
        *,
        permanent: bool = False,
        retry_after: float | None = None,
        offline: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after
        self.offline = offline


class ChatPort(Protocol):
    """What the outbox relay needs from a platform. Only the relay calls these; it calls them at
    least once per outbox row (a crash after the platform accepted, before the relay recorded it,
    repeats the call). A port may also have ``async def aclose()``, which App.aclose calls at shutdown.

    ``Rendered.image``, when set, is a PNG to show with the text (or skip, saying so in the text, if the
    platform cannot). It is best effort: a failure before anything is visible raises, and the relay
    then sends the text alone at once; once the text is visible, a failed picture is logged, not raised.
    """

    platform: Platform

    def escape(self, text: str) -> str:
        """Make user text inert in this platform's markup (no mentions, no links, no formatting, no
        hidden characters). The result only ever comes back to this port, inside a `Rendered`, so it
        may carry marks that the port's own rendering reads (Slack does)."""
        ...

    async def post(self, to: ConversationRef, message: Rendered, *, key: str | None = None) -> str:
        """Post publicly; return the platform's message id. ``key`` is the same on every attempt at one
        outbox row: where the platform can deduplicate by it (Discord's enforced nonce), a repeated
        attempt returns the first message instead of posting a second."""
        ...

    async def edit(self, to: ConversationRef, message_id: str, message: Rendered) -> None: ...

    async def post_private(
        self, to: ConversationRef, user_id: str, message: Rendered, reply_handle: str | None
    ) -> None:
        """Show ``message`` to one person only (ephemeral), in ``to``."""
        ...

    async def send_direct(
        self, workspace_id: str, user_id: str, message: Rendered, *, key: str | None = None
    ) -> str:
        """A direct message; ``key`` as for `post`."""
        ...


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class FixedClock:
    """A clock tests move by hand."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.current = start or dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)

    def now(self) -> dt.datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += dt.timedelta(**delta)
