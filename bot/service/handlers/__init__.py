"""The capabilities, one module each. A new capability is one new module and one line here; the
order is the order in which their reactions to an event run."""

from __future__ import annotations

from bot.service.handlers import actions, deck, goals, info, participation, rounds, voting
from bot.service.registry import Registry

CAPABILITIES = (rounds.cap, participation.cap, voting.cap, deck.cap, goals.cap, actions.cap, info.cap)


def build_registry() -> Registry:
    return Registry(CAPABILITIES)
