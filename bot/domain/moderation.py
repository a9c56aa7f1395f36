"""Moderation without unmasking (no I/O; the ``moderation`` capability writes the rows and posts).

Conveners see what was written, never who wrote it. Where the core must reach the author again (to
tell them privately why an idea was rejected, or to block them for the round) it keeps a *mark*: an
HMAC under the round key of the author's pseudonym and of what the mark is about (an idea, a
rejection). Each mark is different from the pseudonym and from every other mark, so no two rows can
be matched to each other, or to a ballot, without the round key; with it, the core finds the person
by trying the round's roster. Marks are deleted when voting ends, and the key is destroyed at close.

The moderation log keeps a day, a decision, a reason and a hash of the text: never an author.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from bot.domain.errors import DomainError

T = TypeVar("T")

REASON_MAX = 500  # characters of a rejection's reason (it reaches the author, and the log)


class Decision(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"
    REMOVED = "removed"
    BLOCKED = "blocked"


# An idea's statuses, as moderation adds them: "review" waits for the conveners (pre-moderation),
# "removed" was released and taken down (its number stays taken, its text is gone).
REVIEW = "review"
REMOVED = "removed"


def _mac(round_key: bytes, *parts: str) -> str:
    return hmac.new(round_key, "\x1f".join(parts).encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def author_mark(round_key: bytes, subject: str, pseudonym: str) -> str:
    """Who wrote ``subject`` (a released idea's id, a rejection's id), matchable only with the key."""
    return _mac(round_key, "author", subject, pseudonym)


def block_mark(round_key: bytes, pseudonym: str) -> str:
    """A person blocked from contributing in this round (checked when they contribute)."""
    return _mac(round_key, "block", pseudonym)


def find_author(marks: Iterable[str], people: Iterable[T], mark_of: Callable[[T], str]) -> list[T]:
    """The people whose mark is among ``marks`` (the round key tries each one of the roster)."""
    wanted = set(marks)
    return [p for p in people if mark_of(p) in wanted] if wanted else []


def text_hash(text: str) -> str:
    """What the log keeps of a moderated text: enough to recognise it again, not to read it."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_not_blocked(blocked: bool) -> None:
    if blocked:
        raise DomainError("blocked_in_round")


def check_in_review(status: str | None) -> None:
    """Approve and reject act only on an idea still waiting for review."""
    if status != REVIEW:
        raise DomainError("not_in_review")


@dataclass(frozen=True, slots=True)
class LogEntry:
    day: str  # ISO date: the day only
    decision: str
    reason: str
    text_hash: str

    def row(self) -> dict[str, str]:
        return {
            "day": self.day,
            "decision": self.decision,
            "reason": self.reason,
            "text_hash": self.text_hash,
        }


LOG_FIELDS = ("day", "decision", "reason", "text_hash")


def strike(body: Mapping[str, Any], list_prompt: str, number: int) -> dict[str, Any] | None:
    """A release post's body (``Message.to_json``) with idea ``number`` shown as removed, or None
    when that post does not list it. Every other line and the buttons stay as they were."""
    found = False
    parts = []
    for part in body.get("parts", []):
        params = dict(part.get("params", {}))
        if part.get("prompt") == list_prompt:
            ideas = []
            for idea in params.get("ideas", []):
                if idea.get("label") == number:
                    found = True
                    idea = {"label": number, "preview": "", "removed": True}
                ideas.append(idea)
            params["ideas"] = ideas
        parts.append({**part, "params": params})
    return {**body, "parts": parts} if found else None
