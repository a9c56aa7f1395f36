"""A workspace that removes the app (Slack's app_uninstalled or tokens_revoked) and one that installs
it again: its linked conversations are marked gone or back, in one transaction.

A gone conversation gets no new outbox rows (`outbox.linked_conversations`), is never reported as a
stall to the conveners, and its undelivered rows fail at once, with one log line, rather than being
retried for the life of their round against a token that no longer exists."""

from __future__ import annotations

import logging

from sqlalchemy import Update, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.persistence.tables import ConversationRow, OutboxRow
from bot.refs import Platform

log = logging.getLogger("convene.tenancy")

GONE_REASON = "the workspace removed the app"


async def workspace_removed(
    sessions: async_sessionmaker[AsyncSession], platform: Platform, workspace_id: str
) -> tuple[int, int]:
    """Mark the workspace's conversations gone and fail its undelivered rows (private ones emptied).
    Returns (conversations, rows). Idempotent: an event delivered twice changes nothing more."""
    async with sessions.begin() as s:
        convs = await s.execute(_mark_gone(platform, workspace_id, gone=True))
        where = (
            OutboxRow.platform == platform.value,
            OutboxRow.workspace_id == workspace_id,
            OutboxRow.status == "pending",
        )
        public = await s.execute(
            update(OutboxRow)
            .where(*where, OutboxRow.visibility == "public")
            .values(status="failed", last_error=GONE_REASON, next_attempt_at=None)
        )
        private = await s.execute(
            update(OutboxRow)
            .where(*where, OutboxRow.visibility != "public")
            .values(status="failed", last_error=GONE_REASON, body={}, reply_handle=None, next_attempt_at=None)
        )
    n_convs = _count(convs)
    n_rows = _count(public) + _count(private)
    log.warning(
        "a %s workspace removed the app: %d linked conversations marked gone, %d undelivered messages "
        "failed (not retried)",
        platform.value,
        n_convs,
        n_rows,
    )
    return n_convs, n_rows


async def workspace_returned(
    sessions: async_sessionmaker[AsyncSession], platform: Platform, workspace_id: str
) -> int:
    """The workspace installed the app again: its conversations take posts again."""
    async with sessions.begin() as s:
        result = await s.execute(_mark_gone(platform, workspace_id, gone=False))
    n = _count(result)
    if n:
        log.info("a %s workspace installed the app again: %d linked conversations back", platform.value, n)
    return n


def _mark_gone(platform: Platform, workspace_id: str, *, gone: bool) -> Update:
    """The workspace's linked conversations that are not ``gone`` yet, marked so (or back)."""
    return (
        update(ConversationRow)
        .where(
            ConversationRow.platform == platform.value,
            ConversationRow.workspace_id == workspace_id,
            ConversationRow.gone.is_(not gone),
        )
        .values(gone=gone)
    )


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
