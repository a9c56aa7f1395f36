"""The capabilities, one module each. A new capability is one new module and one line here; the
order is the order in which their reactions to an event run."""

from __future__ import annotations

from bot.service.handlers import (
    actions,
    checkins,
    deck,
    delphi,
    goals,
    info,
    moderation,
    nudges,
    outages,
    participation,
    pilots,
    progress,
    recap,
    reminders,
    retention,
    rounds,
    tracking,
    voting,
)
from bot.service.registry import Registry

CAPABILITIES = (
    rounds.cap,
    participation.cap,
    moderation.cap,  # after the release: ideas still in review, marks of released ideas
    voting.cap,
    deck.cap,
    goals.cap,
    delphi.cap,
    actions.cap,
    tracking.cap,  # follow-up starts once the summary is written
    reminders.cap,
    checkins.cap,
    progress.cap,
    pilots.cap,
    recap.cap,
    info.cap,
    retention.cap,
    outages.cap,  # channels whose posts keep failing: the conveners are told
    nudges.cap,
)


def build_registry() -> Registry:
    return Registry(CAPABILITIES)
