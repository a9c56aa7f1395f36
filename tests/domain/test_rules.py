"""Who may do what, when: the rules every route shares, without a database."""

from __future__ import annotations

import pytest

from bot.domain import rules
from bot.domain.errors import DomainError
from bot.domain.phases import OPEN_PHASES, Phase
from bot.domain.rules import Who


def code(fn: object, *args: object, **kwargs: object) -> str | None:
    try:
        fn(*args, **kwargs)  # type: ignore[operator]
    except DomainError as err:
        return err.code
    return None


@pytest.mark.parametrize("phase", list(Phase))
def test_a_command_runs_only_in_its_phases_and_a_finished_round_says_it_is_over(phase: Phase) -> None:
    assert code(rules.check_phase, phase.value, None) is None
    assert code(rules.check_phase, phase.value, (Phase.VOTE,)) == (
        None if phase is Phase.VOTE else "wrong_phase" if phase in OPEN_PHASES else "round_over"
    )


def test_wrong_phase_names_the_phase_and_the_phases_needed() -> None:
    with pytest.raises(DomainError) as err:
        rules.check_phase("goals", (Phase.VOTE,))
    assert err.value.params == {"phase": "goals", "needed": ["vote"]}


@pytest.mark.parametrize(
    ("who", "convener", "joined", "expected"),
    [
        (Who.ANYONE, False, False, None),
        (Who.MEMBER, False, True, None),
        (Who.MEMBER, True, False, "not_joined"),  # conveners join like everyone else to take part
        (Who.MEMBER_OR_CONVENER, True, False, None),
        (Who.MEMBER_OR_CONVENER, False, True, None),
        (Who.MEMBER_OR_CONVENER, False, False, "not_joined"),
        (Who.CONVENER, True, False, None),
        (Who.CONVENER, False, True, "not_convener"),
    ],
)
def test_who_may_act(who: Who, convener: bool, joined: bool, expected: str | None) -> None:
    assert code(rules.check_who, who, convener=convener, joined=joined, round_title="T") == expected


def test_conveners_are_named_by_the_platform_or_started_the_round() -> None:
    assert rules.is_convener(True, "slack\x1fT\x1fU1", [])
    assert rules.is_convener(False, "slack\x1fT\x1fU1", ["slack\x1fT\x1fU1"])
    assert not rules.is_convener(False, "slack\x1fT\x1fU2", ["slack\x1fT\x1fU1"])


def test_next_follows_the_path_and_stops_at_the_end() -> None:
    assert [rules.next_phase(p) for p in ("contribute", "vote", "goals", "actions")] == [
        Phase.VOTE,
        Phase.GOALS,
        Phase.ACTIONS,
        Phase.CLOSED,
    ]
    assert code(rules.next_phase, "closed") == "round_over"
    assert code(rules.next_phase, "cancelled") == "round_over"


def test_an_early_advance_needs_ideas_before_voting_and_a_goal_before_actions() -> None:
    assert code(rules.check_early_advance, Phase.CONTRIBUTE, ideas=0, goals=0) == "no_ideas"
    assert code(rules.check_early_advance, Phase.CONTRIBUTE, ideas=1, goals=0) is None
    assert code(rules.check_early_advance, Phase.VOTE, ideas=0, goals=0) is None
    assert code(rules.check_early_advance, Phase.GOALS, ideas=3, goals=0) == "no_goals"
    assert code(rules.check_early_advance, Phase.GOALS, ideas=3, goals=1) is None


def test_quota_and_volunteering() -> None:
    assert code(rules.check_quota, 2, 3) is None
    assert code(rules.check_quota, 3, 3) == "quota_reached"
    assert code(rules.check_volunteer, None) is None
    with pytest.raises(DomainError) as err:
        rules.check_volunteer("Kim")
    assert err.value.code == "action_taken_already"
    assert err.value.params == {"owner": "Kim"}


def test_which_buttons_each_phase_shows() -> None:
    assert rules.card_buttons("contribute") == ("join", "contribute", "mine")
    assert rules.card_buttons("vote") == ("deck", "join")
    assert rules.card_buttons("vote", continuous=True) == ("deck", "join", "contribute", "mine")
    for phase in ("goals", "actions", "closed", "cancelled"):
        assert rules.card_buttons(phase) == ()
    assert rules.action_card_buttons("actions", None) == ("take",)
    assert rules.action_card_buttons("actions", "Kim") == ()
    assert rules.action_card_buttons("closed", None) == ()


def test_a_round_runs_only_where_one_organisation_reads() -> None:
    from bot.domain.commands import Audience

    assert code(rules.check_audience, Audience.OWN) is None
    assert code(rules.check_audience, Audience.SHARED) == "shared_channel"
    assert code(rules.check_audience, Audience.UNKNOWN) == "audience_unknown"


def test_a_round_is_linked_from_its_own_workspace_or_another_platform_never_another_workspace() -> None:
    slack_a, slack_b, guild = ("slack", "T0A"), ("slack", "T0B"), ("discord", "1")
    assert rules.may_link_from({slack_a}, slack_a)
    assert rules.may_link_from({slack_a}, guild)  # one organisation's Slack and its Discord
    assert not rules.may_link_from({slack_a}, slack_b)
    assert not rules.may_link_from({slack_a, guild}, ("discord", "2"))
