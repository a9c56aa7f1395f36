"""The neutral component-id codec shared by every adapter: ``cv:<round>:<verb>[:<arg>...]``.

Buttons and forms carry their whole state in this string, so they keep working after a restart.
Discord caps custom ids at 100 characters, the tightest of the platforms.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

MAX_LEN = 100
PREFIX = "cv"
_PART = re.compile(r"[0-9A-Za-z_.-]{1,40}")  # "-" (no round yet) is one of these
_WHOLE = re.compile(PREFIX + r"(?::[0-9A-Za-z_.-]{1,40}){2,}")


@dataclass(frozen=True, slots=True)
class ComponentId:
    round_id: str  # a round's hex id, or "-" for forms not tied to a round yet
    verb: str
    args: tuple[str, ...] = ()

    def encode(self) -> str:
        value = ":".join((PREFIX, self.round_id, self.verb, *self.args))
        if not _WHOLE.fullmatch(value) or value.count(":") != 2 + len(self.args):  # a part holding ':'
            bad = next((p for p in (self.round_id, self.verb, *self.args) if not _PART.fullmatch(p)), value)
            raise ValueError(f"bad component id part: {bad!r}")
        if len(value) > MAX_LEN:
            raise ValueError("component id longer than 100 characters")
        return value

    @classmethod
    def decode(cls, value: str) -> ComponentId | None:
        """None for anything that is not ours or is malformed: callers answer with a clear error."""
        if len(value) > MAX_LEN:
            return None
        if not _WHOLE.fullmatch(value):
            return None
        _, round_id, verb, *args = value.split(":")
        return cls(round_id, verb, tuple(args))


def new_id() -> str:
    """Random (UUIDv4) ids for every row: no order, no time (see ARCHITECTURE.md, anonymity)."""
    return uuid.uuid4().hex
