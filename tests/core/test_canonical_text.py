"""Canonical text at intake: one text whatever platform it was typed on, nothing hidden in it, no
mention syntax, and a comparison key that finds the same idea sent twice."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.domain.errors import FormErrors
from bot.domain.validation import action_from_form, contribution_from_form, round_from_form
from bot.sanitize import canonical_text, comparison_key, display_name, one_line
from tests.hostile_text import FRAGMENTS
from tests.platform_fakes.markup import hidden_characters

# The same idea as a Slack user and a Discord user type it (threat model A4).
SAME_IDEA = [
    (
        "Safer crossings :thumbsup: for *everyone* &amp; kids, see <https://city.example/plan|the plan>",
        "Safer crossings 👍 for **everyone** & kids, see [the plan](https://city.example/plan)",
    ),
    ("_Plant reeds_ along the bank :seedling:", "*Plant reeds* along the bank 🌱"),
    ("~no cars~ on Sundays :blobcat:", "~~no cars~~ on Sundays <:blobcat:123456789012345678>"),
    ("> quote from <@U0ABC> in <#C0GEN>", "> quote from <@123456789012345678> in <#123456789012345678>"),
    ("`Free buses` :wave::skin-tone-3:", "``Free buses`` 👋🏼"),
    ("<!here> more trees", "@here more trees"),
    ("*Idea 9*: a new park", "__Idea 9__: a new park"),
]


@pytest.mark.parametrize(("slack", "discord"), SAME_IDEA)
def test_A4_an_idea_reads_the_same_whichever_platform_it_was_typed_on(slack: str, discord: str) -> None:
    assert canonical_text(slack) == canonical_text(discord)


def test_emoji_codes_become_emoji_and_unknown_ones_stay_as_typed() -> None:
    assert canonical_text(":thumbsup: :+1: :heart: :flag-us:") == "👍 👍 ❤️ 🇺🇸"
    assert canonical_text("<a:party_parrot:1> and :party_parrot:") == ":party_parrot: and :party_parrot:"
    assert canonical_text("10:30:45 and ratio a:b:c") == "10:30:45 and ratio a:b:c"


def test_markup_of_either_dialect_reduces_to_the_text_it_shows() -> None:
    assert canonical_text("# Heading\n-# small\n>>> quoted\n||secret||") == "Heading\nsmall\nquoted\nsecret"
    assert canonical_text("```py\nprint(1)\n```") == "py\nprint(1)"
    # A masked link shows its target next to its text, whichever way it was written.
    assert (
        canonical_text("[https://city.gov](https://evil.example)")
        == "https://city.gov (https://evil.example)"
    )
    assert (
        canonical_text("<https://evil.example|https://city.gov>") == "https://city.gov (https://evil.example)"
    )
    assert canonical_text("<https://city.gov|https://city.gov>") == "https://city.gov"
    # Ordinary punctuation is left alone.
    for plain in ("2*3*4 = 24", "snake_case_name", "x > 3 and y < 4", "~5 people", "a - b", "C# and F#"):
        assert canonical_text(plain) == plain


MENTION_SYNTAX = ("<@", "<!", "<#", "</", "<:", "<a:", "<t:", "<id:", "@everyone", "@here", "@channel")


@pytest.mark.parametrize("text", FRAGMENTS)
def test_canonical_text_keeps_no_mention_syntax_and_nothing_hidden(text: str) -> None:
    out = canonical_text(text)
    assert not [s for s in MENTION_SYNTAX if s in out], out
    assert hidden_characters(out) == []
    assert "\r" not in out


def test_mentions_read_as_plain_text() -> None:
    assert canonical_text("<@U0ABC|maya> and <@U0DEF>") == "@maya and @…"
    assert canonical_text("<!channel> <!here> @everyone") == "＠channel ＠here ＠everyone"
    assert canonical_text("<!subteam^S0|@planners> <@&1>") == "@planners @…"
    assert canonical_text("</convene join:1> at <t:1700000000:R>") == "/convene join at 2023-11-14 22:13 UTC"
    assert canonical_text("mail me at a@here.example") == "mail me at a@here.example"


def test_hidden_characters_go_and_the_ones_writing_needs_stay() -> None:
    hidden = (
        "\u202e\u2066\u200b\u2060\ufeff\u00ad\x80\x9f\U000e0068\U000e0069"  # bidi, zero-width, C1, tags
        "\u180e\u2061\u2062\u2063\u2064\u034f\u115f\u1160\u3164\uffa0\ufe0f\U000e0100"
    )
    assert canonical_text(f"a{hidden}b") == "ab"
    for kept in ("❤️", "👨\u200d👩\u200d👧", "1️⃣", "🏳️\u200d🌈", "👋🏽", "می\u200cخواهم", "क्\u200dष"):
        assert canonical_text(kept) == kept
    # Line breaks of every kind (NEL, the C1 one, too) are one: a newline.
    assert canonical_text("next\u2028line\r\nand\rmore\x85end") == "next\nline\nand\nmore\nend"
    assert canonical_text("tab\tand  spaces\u3000here") == "tab and spaces here"


def test_display_names_are_one_short_clean_line() -> None:
    name = display_name("@everyone\u202e<@&555555555555555555>\n**Official**" + "x" * 200)
    assert "\n" not in name
    assert "\u202e" not in name
    assert "@everyone" not in name
    assert len(name) <= 80
    assert name.startswith("＠everyone@… Official")


def test_the_same_idea_sent_twice_has_one_comparison_key() -> None:
    key = comparison_key("More bike lanes!")
    for same in ("more bike lanes", "**More  bike-lanes**", "MORE BIKE LANES.", "_more_ bike lanes :)"):
        assert comparison_key(same) == key
    slack, discord = SAME_IDEA[0]
    assert comparison_key(slack) == comparison_key(discord)
    assert comparison_key("Fewer bike lanes") != key
    assert comparison_key("More bike lanes 🚲") != key  # an emoji is content, not punctuation


def test_every_form_field_is_canonical_at_intake() -> None:
    text = contribution_from_form({"text": "**Idea 9** <@U1|x> :thumbsup:\u202e"}, min_len=1, max_len=100)
    assert text == "Idea 9 @x 👍"
    spec = round_from_form({"title": "__River__\n<!here>", "purpose": "> why"}, ["standard"])
    assert (spec.title, spec.purpose) == ("River ＠here", "why")
    today = dt.date(2026, 1, 1)
    action = action_from_form(
        {"goal": "1", "title": "[Do it](https://x.example)", "due": "2026-02-01"}, today
    )
    assert action.title == "Do it (https://x.example)"
    with pytest.raises(FormErrors) as err:  # nothing visible left: required, as if empty
        contribution_from_form({"text": "\u200b\u202e"}, min_len=1, max_len=100)
    assert err.value.fields == {"text": "required"}


def test_one_line_joins_lines_without_making_markup() -> None:
    assert one_line("*a\nb*") == "a b"
    assert one_line("  # Title \n\n second  ") == "Title second"
