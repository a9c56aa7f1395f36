"""What happened, for the capabilities that react to it (in the same transaction as the change)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.phases import Phase


@dataclass(frozen=True, slots=True)
class PhaseEntered:
    """A round moved from ``source`` to ``target``; its phase column already says ``target``."""

    round_id: str
    source: Phase
    target: Phase
    idle_days: int | None = None  # set when the round was cancelled for being idle this long


@dataclass(frozen=True, slots=True)
class ChannelLinked:
    """A conversation joined a round: the channel its convener started it in, or one linked later."""

    round_id: str
    conversation_id: str


Event = PhaseEntered | ChannelLinked
