"""Moderation rules with no database: marks that only the round key matches, the log's hash, the
refusals, and a release post with one line struck."""

from __future__ import annotations

import pytest

from bot.domain import moderation as mod
from bot.domain.errors import DomainError

KEY = b"k" * 32
OTHER_KEY = b"o" * 32


def test_B7_marks_differ_by_subject_and_purpose_and_need_the_round_key() -> None:
    a1 = mod.author_mark(KEY, "idea-1", "pseudonym-a")
    a2 = mod.author_mark(KEY, "idea-2", "pseudonym-a")
    block = mod.block_mark(KEY, "pseudonym-a")
    # One author's marks cannot be matched to each other, to the pseudonym, or across keys.
    assert len({a1, a2, block, "pseudonym-a"}) == 4
    assert mod.author_mark(OTHER_KEY, "idea-1", "pseudonym-a") != a1
    assert mod.author_mark(KEY, "idea-1", "pseudonym-a") == a1  # stable under one key


def test_B7_the_round_key_finds_the_author_among_the_roster_and_nobody_else() -> None:
    roster = ["p1", "p2", "p3"]
    marks = [mod.author_mark(KEY, "case", "p2")]
    assert mod.find_author(marks, roster, lambda p: mod.author_mark(KEY, "case", p)) == ["p2"]
    assert mod.find_author(marks, roster, lambda p: mod.author_mark(OTHER_KEY, "case", p)) == []
    assert mod.find_author([], roster, lambda p: p) == []


def test_B7_the_log_keeps_a_hash_of_the_text_never_the_text() -> None:
    digest = mod.text_hash("a slur")
    assert len(digest) == 64
    assert "slur" not in digest
    entry = mod.LogEntry("2026-11-26", mod.Decision.REJECTED, "Insults", digest)
    assert tuple(entry.row()) == mod.LOG_FIELDS


def test_B7_refusals_are_clear_codes() -> None:
    with pytest.raises(DomainError) as blocked:
        mod.check_not_blocked(True)
    assert blocked.value.code == "blocked_in_round"
    mod.check_not_blocked(False)
    with pytest.raises(DomainError) as gone:
        mod.check_in_review("pending")
    assert gone.value.code == "not_in_review"
    mod.check_in_review(mod.REVIEW)


def test_B7_strike_replaces_one_line_of_a_release_post_and_keeps_the_rest() -> None:
    body = {
        "parts": [
            {"prompt": "vote/release_header", "params": {"count": 2}, "buttons": []},
            {
                "prompt": "vote/release_list",
                "params": {"ideas": [{"label": 1, "preview": "keep"}, {"label": 2, "preview": "bad"}]},
                "buttons": [{"action": "cv:r:deck", "label": "deck", "style": "primary"}],
            },
        ]
    }
    struck = mod.strike(body, "vote/release_list", 2)
    assert struck is not None
    ideas = struck["parts"][1]["params"]["ideas"]
    assert ideas == [{"label": 1, "preview": "keep"}, {"label": 2, "preview": "", "removed": True}]
    assert struck["parts"][0] == body["parts"][0]
    assert struck["parts"][1]["buttons"] == body["parts"][1]["buttons"]
    assert body["parts"][1]["params"]["ideas"][1]["preview"] == "bad"  # the original is untouched
    assert mod.strike(body, "vote/release_list", 7) is None
