"""What people type, as both platforms would show it: through every template, each port's real escape
and payload builder, judged by the platforms' rules (tests/platform_fakes/markup.py). Nothing a person
types becomes a live link, a mention, a ping, markup, or a hidden character, and it reads as typed."""

from __future__ import annotations

from collections import Counter

import pytest
from discord.utils import escape_markdown, escape_mentions
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.discord import render
from adapters.slack.app import form_view
from bot.forms import Form, FormField
from bot.messages import Message, Part
from bot.prompts import PromptKey, Prompts
from bot.sanitize import canonical_text, strip_invisible
from tests.hostile_text import (
    FRAGMENTS,
    SLOTS,
    discord_problems,
    hostile_inputs,
    messages,
    posted,
    problems,
    slack_problems,
)
from tests.platform_fakes.markup import discord_reading, slack_reading

TEMPLATES = [name for name, _m in messages("x")]
hostile = st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from([*FRAGMENTS, *"*_~`|<>[]()#@:-+.!&\\ \n"]), min_size=1, max_size=12).map(
        "".join
    ),
)


@settings(max_examples=300, deadline=None)
@given(hostile, st.sampled_from(TEMPLATES))
def test_no_template_lets_user_text_become_live_on_either_platform(value: str, template: str) -> None:
    assert problems(value, frozenset({template})) == []


@pytest.mark.parametrize("template", TEMPLATES)
def test_B3_every_template_with_every_fragment_in_every_slot(template: str) -> None:
    """Each template (one added later too: a slot `params` does not fill fails here) with the whole
    injection matrix at once in every slot where people's text lands."""
    assert problems("\n".join(FRAGMENTS), frozenset({template})) == []


@pytest.mark.parametrize("template", sorted(SLOTS))
def test_the_slots_show_what_people_typed(template: str) -> None:
    """Not vacuous: the templates the slow test and the benchmark fill do show the value."""
    [(_name, message)] = messages("zqzq", frozenset({template}))
    got = posted(message)
    assert "zqzq" in "".join(slack_reading(blocks)[0] for _t, blocks in got.slack)
    assert "zqzq" in "".join(discord_reading(body["content"])[0] for body in got.discord)


@settings(max_examples=200, deadline=None)
@given(hostile)
def test_user_text_reads_as_typed_on_both_platforms(value: str) -> None:
    text = strip_invisible(value).strip()
    message = Message((Part(PromptKey.RELEASE_IDEA, {"label": 7, "text": value}),))
    got = posted(message)
    slack_shown = "".join(slack_reading(blocks)[0] for _t, blocks in got.slack)
    discord_shown = "".join(discord_reading(body["content"])[0] for body in got.discord)
    if text and len(text) < 1500:  # longer ones are split across messages
        assert text in slack_shown
        assert text in discord_shown


@pytest.mark.parametrize("idea", ["*Idea 9*", "**Idea 9**", "__Idea 9__", "# Idea 9", "> Idea 9 (official)"])
def test_B3_an_idea_cannot_look_like_the_bots_own_label(idea: str) -> None:
    for value in (idea, canonical_text(idea)):
        got = posted(Message((Part(PromptKey.RELEASE_IDEA, {"label": 3, "text": value}),)))
        [(_text, blocks)] = got.slack
        bold = [el["text"] for el in blocks[0]["elements"][0]["elements"] if el.get("style", {}).get("bold")]
        assert bold == ["Idea 3"]
        [body] = got.discord
        assert discord_reading(body["content"])[1] == "****"  # only the label's bold markers are live


# Ideas up to the default limit of 1,000 characters, many of them nearly all characters that need an
# escape on Discord (twice as long once escaped), with emoji sequences a cut must not split.
_ESCAPED = [*"*_~`|<>[]()#@:-+\\", "👨‍👩‍👧", "❤️", "1. ", "\n- "]
long_idea = st.one_of(
    st.lists(st.sampled_from([*FRAGMENTS, *_ESCAPED]), max_size=300),
    st.lists(st.sampled_from(_ESCAPED), min_size=1, max_size=20).map(lambda parts: parts * 1000),
).map(lambda parts: "".join(parts)[:1000])


def deck_card(idea: str) -> render.Chunk:
    """A deck card as the Discord adapter builds it: a notice over the idea, the earlier vote shown."""
    notice = Part(PromptKey.DECK_NOTICE, {"kind": "changed", "label": 7})
    shown = Part(PromptKey.DECK_CARD, {"label": 7, "text": idea, "voted": 3, "total": 9, "current": "agree"})
    return render.card(Prompts().render_message(Message((notice, shown)), render.card_escape))


@settings(max_examples=100, deadline=None)
@given(long_idea)
def test_a_deck_card_fits_one_discord_message_and_only_the_idea_is_shortened(idea: str) -> None:
    """A deck card is one Discord message (the click's answer replaces it), and an idea whose every
    character needs an escape is twice as long once escaped: the idea is cut, the bot's lines stay."""
    card = deck_card(idea)
    assert len(card.content) <= render.MAX_CONTENT
    assert discord_problems({"content": card.content, "allowed_mentions": {"parse": []}}) == []
    shown, live, _shadow = discord_reading(card.content)
    assert live == discord_reading(deck_card("x").content)[1]  # the bot's markup, and nothing else
    assert shown.startswith("✓ Your vote on Idea 7 is changed.\n\n**Idea 7** · 3 of 9 voted")
    assert shown.endswith("Your vote: **Agree**. Change it here, or move on.")
    assert "\ufdd0" not in card.content
    assert "\ufdd1" not in card.content


def test_B3_every_masked_link_is_escaped_on_discord() -> None:
    idea = "See [the council plan](https://council.example) and [sign here](https://evil.example/phish) today"
    for value in (idea, canonical_text(idea)):
        [body] = posted(Message((Part(PromptKey.RELEASE_IDEA, {"label": 1, "text": value}),))).discord
        assert discord_problems(body) == []
        assert "[sign here](https://evil.example/phish)" in discord_reading(body["content"])[0] or (
            "sign here (https://evil.example/phish)" in discord_reading(body["content"])[0]
        )


HOSTILE_FIELD = (
    "[council form](https://council.example) [official survey](https://evil.example/phish) "
    "**Official** <!channel> @everyone <@&555> \u202eevil\n> quoted"
)
# Forms whose intro the core renders whole, with a round's title and purpose, a goal's metric or an
# action's title in it (the Join modal's charter, check-ins, pilot reviews, progress, Delphi estimates).
INTROS = [key for key in PromptKey if key.value.endswith("intro") or key == PromptKey.CHARTER]


@pytest.mark.parametrize("key", INTROS, ids=[k.value for k in INTROS])
def test_form_intros_holding_peoples_text_are_inert_on_both_platforms(key: PromptKey) -> None:
    prompts = Prompts()
    [(_name, probe)] = messages("zqzq", frozenset({key.value}))
    shows_text = "zqzq" in prompts.render(key, probe.parts[0].params)
    for value in (HOSTILE_FIELD, canonical_text(HOSTILE_FIELD)):
        [(_name, message)] = messages(value, frozenset({key.value}))
        intro = prompts.render(key, message.parts[0].params)  # as the core renders it: whole
        form = Form("cv:r:form:join", "Join", "Join", intro, (FormField("sector", "Sector", "select"),))
        view = form_view(form, "C1", prompts.label)
        assert slack_problems("", view["blocks"]) == []
        assert not shows_text or "official survey" in slack_reading(view["blocks"])[0]
        [page] = render.form_pages(form)
        modal = render.FormModal(form.title, form.form_id, page, {}).to_dict()
        [display] = [c["content"] for c in modal["components"] if c["type"] == 10]
        assert discord_problems({"content": display, "allowed_mentions": {"parse": []}}) == []
        assert not shows_text or "official survey" in discord_reading(display)[0]
        # The page that continues a long form shows the same intro, made the same way.
        assert (
            discord_problems({"content": render.intro_text(intro), "allowed_mentions": {"parse": []}}) == []
        )
    if key == PromptKey.CHARTER:
        assert shows_text  # not vacuous: the Join modal shows the round's title and purpose


# --- the judge can fail: what the renderers did before --------------------------------------------


def test_the_judge_flags_what_the_old_renderers_let_through() -> None:
    idea = "[a](https://council.example) [b](https://evil.example) <@&1> \u202e**Idea 9**"
    old_discord = escape_markdown(escape_mentions(idea))
    kinds = {kind for kind, _detail in discord_problems({"content": old_discord})}
    assert kinds >= {"link", "ping", "hidden"}  # and no allowed_mentions: it would notify
    old_slack = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Idea 9* \u202e"}}]
    assert {kind for kind, _ in slack_problems("<!here>", old_slack)} == {"markup", "link", "hidden"}
    link = [
        {"type": "rich_text", "elements": [{"type": "rich_text_section", "elements": [{"type": "link"}]}]}
    ]
    assert [kind for kind, _ in slack_problems("", link)] == ["markup"]
    # A value inside a template's code span could end it: escapes do not work there, which is why no
    # template puts a person's text between backticks (the comparison with benign text catches it).
    breakout = "`" + render.escape("x` **bold** `y") + "`"
    assert discord_reading(breakout)[1] != discord_reading("`" + render.escape("xxxxxxxxxxxxxx") + "`")[1]


# --- the figure -----------------------------------------------------------------------------------

FUZZ_INPUTS = 10_000


@pytest.mark.slow
def test_ten_thousand_hostile_inputs_post_nothing_live() -> None:
    """10,000 hostile texts, each as a released idea and in one more of the templates where people's
    text lands (in turn), rendered for Slack and for Discord. benchmarks/hostile_text.py runs every
    input through every one of those templates, and through whole rounds in the core."""
    others = sorted(SLOTS - {"vote/release_idea"})
    found: Counter[str] = Counter()
    examples: dict[str, tuple[str, str, str]] = {}
    for i, value in enumerate(hostile_inputs(FUZZ_INPUTS)):
        for template, kind, detail in problems(
            value, frozenset({"vote/release_idea", others[i % len(others)]})
        ):
            found[kind] += 1
            examples.setdefault(kind, (template, detail, value))
    assert not found, examples
