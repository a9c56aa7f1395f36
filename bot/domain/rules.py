"""Who may do what, when: the rules every route into the core shares (no I/O here).

The bus applies a command's declared rule (phases, who) when its form opens and again when the form
is submitted or the command runs, so the two can never disagree.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from enum import StrEnum

from bot.domain.commands import Audience
from bot.domain.errors import DomainError
from bot.domain.phases import NEXT, OPEN_PHASES, Phase


class Who(StrEnum):
    ANYONE = "anyone"
    MEMBER = "member"  # has joined the round (accepted the charter)
    MEMBER_OR_CONVENER = "member_or_convener"
    CONVENER = "convener"


def is_convener(flagged_by_platform: bool, actor_key: str, round_conveners: Collection[str]) -> bool:
    """Conveners are named by the adapter's config (users, groups, roles), or started the round or
    linked a channel to it."""
    return flagged_by_platform or actor_key in round_conveners


def may_link_from(round_tenants: Collection[tuple[str, str]], tenant: tuple[str, str]) -> bool:
    """Whether a convener of ``tenant`` (platform, workspace) may link a channel to a round that runs
    in ``round_tenants``: from the round's own workspace, or from a platform it does not run on yet
    (one organisation's Slack and its Discord). Never from a second workspace of a platform it runs
    on: one deployment serves many organisations, and a code seen elsewhere must not open their
    round to another one (it is refused as an unknown code: nothing says the round exists)."""
    if tenant in round_tenants:
        return True
    return all(platform != tenant[0] for platform, _ in round_tenants)


def check_audience(audience: Audience) -> None:
    """A round runs only where its people are all of one organisation: in a channel shared with
    another one (Slack Connect) everything it posts, and who joins, is seen outside it."""
    if audience is Audience.SHARED:
        raise DomainError("shared_channel")
    if audience is Audience.UNKNOWN:
        raise DomainError("audience_unknown")


def check_phase(phase: str, allowed: Collection[Phase] | None) -> None:
    """``allowed`` None: any phase. A round that is over says so, rather than naming the phase."""
    if allowed is None or phase in allowed:
        return
    if phase not in OPEN_PHASES:
        raise DomainError("round_over")
    raise DomainError("wrong_phase", phase=phase, needed=[p.value for p in allowed])


def check_who(who: Who, *, convener: bool, joined: bool, round_title: str | None) -> None:
    if who is Who.CONVENER and not convener:
        raise DomainError("not_convener")
    if who is Who.MEMBER and not joined:
        raise DomainError("not_joined", round=round_title)
    if who is Who.MEMBER_OR_CONVENER and not (joined or convener):
        raise DomainError("not_joined", round=round_title)


def next_phase(phase: str) -> Phase:
    current = Phase(phase)
    if current not in NEXT:
        raise DomainError("round_over")
    return NEXT[current]


def check_early_advance(phase: Phase, *, ideas: int, goals: int) -> None:
    """A convener's "next" needs something to move on with; a deadline moves on regardless."""
    if phase is Phase.CONTRIBUTE and ideas == 0:
        raise DomainError("no_ideas")
    if phase is Phase.GOALS and goals == 0:
        raise DomainError("no_goals")


def check_quota(already: int, limit: int) -> None:
    if already >= limit:
        raise DomainError("quota_reached", limit=limit)


def check_volunteer(owner: str | None) -> None:
    """An action is taken once; the first volunteer owns it."""
    if owner is not None:
        raise DomainError("action_taken_already", owner=owner)


def card_buttons(phase: str, *, continuous: bool = False) -> Sequence[str]:
    """The round card's buttons (verbs) in each phase: join while there is something to join for,
    "Vote" (the private deck) while voting, and ideas too while a continuous round votes."""
    if phase == Phase.CONTRIBUTE:
        return ("join", "contribute", "mine")
    if phase == Phase.VOTE:
        return ("deck", "join", "contribute", "mine") if continuous else ("deck", "join")
    return ()


def action_card_buttons(phase: str, owner: str | None) -> Sequence[str]:
    """An open action offers "I'll take this" while actions are being agreed."""
    return ("take",) if owner is None and phase == Phase.ACTIONS else ()
