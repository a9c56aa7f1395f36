"""Hostile user text, and a judge of what the bot would post with it on Slack and on Discord.

`hostile_inputs` mixes the injection matrix of the threat model (B1 mentions, B3 breakouts and
spoofed links, B4 bidi and invisible characters) with markup of both dialects, emoji, and random
code points from the ranges that cause trouble. `posted_with` renders a value into every template
slot through both ports' real escape and payload builders (Slack Block Kit, Discord chunks and send
arguments), next to a benign value of the same shape, and `problems` lists what a person would see
go wrong, judged by the platforms' rules in `tests.platform_fakes.markup`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.discord import render
from adapters.discord.port import _send_kwargs
from adapters.slack.port import escape as slack_escape
from adapters.slack.port import render_messages
from bot.domain.release import preview
from bot.messages import Message, Part
from bot.prompts import PromptKey, Prompts
from bot.sanitize import strip_invisible
from tests.platform_fakes.discord_rules import message_errors, pings
from tests.platform_fakes.markup import (
    discord_live_links,
    discord_mentions,
    discord_reading,
    hidden_characters,
    slack_fallback_live,
    slack_reading,
)
from tests.platform_fakes.slack_blocks import validate_blocks

ROOT = Path(__file__).resolve().parents[1]

FRAGMENTS = (
    # B1: broadcasts and mentions, plain, full-width, split by invisibles
    "@everyone",
    "@here",
    "＠everyone",
    "@\u200beveryone",
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<!subteam^S0>",
    "<!subteam^S0|@team>",
    "<@U0>",
    "<@W0|maya>",
    "<#C0>",
    "<#C0|general>",
    "<@123456789012345678>",
    "<@!123456789012345678>",
    "<@&123456789012345678>",
    "<#123456789012345678>",
    "</convene:123456789012345678>",
    "<t:1700000000:R>",
    "<id:customize>",
    "<:blobcat:123456789012345678>",
    "<a:party:1>",
    # B3: breakouts, forged labels, spoofed links
    "*Convener:* phase closed",
    "**Idea 9**",
    "*Idea 9*",
    "> Official City statement",
    ">>> all of this is quoted",
    "```",
    "```py\nprint('x')\n```",
    "`code`",
    "# heading",
    "## Idea 1",
    "-# subtext",
    "||spoiler||",
    "~~strike~~",
    "~strike~",
    "__underline__",
    "_italic_",
    "- list item",
    "1. numbered",
    "<https://evil.example|https://city.gov>",
    "<https://evil.example>",
    "[https://city.gov](https://evil.example)",
    "[Official city form](https://evil.example/phish)",
    "[council](<https://evil.example>)",
    "https://xn--ct-ixa.gov/",
    "javascript:alert(1)",
    "discord.gg/invite",
    "mailto:a@b.c",
    "&amp; &lt;!channel&gt; &lt;@U0&gt;",
    "\\*not bold\\*",
    ":thumbsup:",
    ":wave::skin-tone-3:",
    ":flag-us:",
    "👍🏽 ❤️ 👨‍👩‍👧 1️⃣ 🏳️‍🌈",
    # B4: bidi, invisibles, controls
    "\u202eevil",
    "\u2066isolate\u2069",
    "\u200e\u200f\u061c",
    "zero\u200bwidth\u2060join\ufeff",
    "soft\u00adhyphen",
    "hello\U000e0068\U000e0069\U000e0064\U000e0065",
    "\u180e\u2061\u2062\u2063\u2064\u034f",
    "\u115f\u1160\u3164\uffa0",
    "a\ufe0f\U000e0100b",
    "c1\x80\x85\x9f",
    "nul\x00bell\x07esc\x1b",
    "\ud800lone",
    "\ufdd0\ufdd1\uffff",
    "line\u2028sep\u2029para",
    "\r\ncrlf\r",
    "tab\there",
    "فارسی\u200cمی",
)

# Code points drawn at random between fragments: the classes that cause trouble, and ordinary text.
_RANGES = (
    (0x00, 0x1F),
    (0x20, 0x7E),
    (0x20, 0x7E),
    (0x7F, 0x9F),
    (0xA0, 0x24F),
    (0x300, 0x36F),
    (0x600, 0x6FF),
    (0x900, 0x97F),
    (0x1100, 0x1160),
    (0x180B, 0x180F),
    (0x2000, 0x206F),
    (0x2100, 0x21FF),
    (0x3000, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFF00, 0xFFEF),
    (0xFFF0, 0xFFFF),
    (0x1F300, 0x1F6FF),
    (0x1F3FB, 0x1F3FF),
    (0xE0000, 0xE007F),
    (0xE0100, 0xE01EF),
)


def hostile_inputs(count: int, seed: int = 9) -> Iterator[str]:
    """``count`` hostile texts, the same for the same seed."""
    rng = random.Random(seed)
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 6)):
            if rng.random() < 0.6:
                parts.append(rng.choice(FRAGMENTS))
            else:
                low, high = rng.choice(_RANGES)
                parts.append("".join(chr(rng.randint(low, high)) for _ in range(rng.randint(1, 12))))
        yield "".join(p + rng.choice(("", " ", " ", "\n", "\n\n")) for p in parts)


# --- every template slot a person's text can reach ----------------------------------------------

ERROR_CODES = sorted(p.stem for p in (ROOT / "prompts" / "en" / "errors").glob("*.j2") if p.stem != "error")
# Where a person's text (or a profile name) lands: ideas, titles and purposes, goal and action fields,
# names, notes, echoes. The rest is the bot's own: numbers, a join code (shown inside a code span),
# phases, statuses, decisions, sector and field names (read through labels.yaml), dates it formats.
_ITEM_STRINGS = ("label", "text", "title", "metric", "unit", "owner", "outcome", "goal_title")
_ITEM_STRINGS += ("baseline", "target", "current", "deadline", "review_date", "due")
_STRINGS = ("title", "purpose", "deadline", "owner", "goal_title", "outcome", "metric", "unit")
_STRINGS += ("baseline", "target", "current", "value", "due", "review_date", "text", "label")
_STRINGS += ("unknown", "round", "sponsor", "resources", "data_source", "note", "decision_note")
_STRINGS += ("zone", "decided_on", "since", "today")
_STRINGS += ("reason",)  # moderation: a rejection's reason, typed by a convener
_STRINGS += ("channel",)  # outages: a channel id, from the platform, escaped all the same
_BOTS = {"code": "ABCD2345", "phase": "vote", "participants": 3, "per_participant": 3, "count": 2}
_BOTS |= {"limit": 3, "max": 1000, "rank": 1, "agree": 1, "disagree": 0, "pass": 0, "score": 50}
_BOTS |= {"number": 1, "goal": 1, "mine": 1, "idea": 2, "pilot": True, "joined": True, "convener": True}
_BOTS |= {"common_ground": True, "divisive": False, "urgency": 3.0, "impact": None}
_BOTS |= {"by_sector": [{"name": "business", "agree": 80}], "sectors_hidden": True, "sector_k": 5}
_BOTS |= {"fields": {"title": "required", "text": "too_long"}}
_BOTS |= {"subcommands": [{"name": "link", "arg": "code", "required": True}]}
# the voting deck, continuous rounds, merged duplicates
_BOTS |= {"voted": 3, "total": 9, "kind": "recorded", "batch": True, "merged": True, "batch_min": 5}
_BOTS |= {"continuous": {"batch_min": 5, "min_participants": 8}}
# follow-up: statuses, reminders, progress, pilots, Delphi estimates; retention
_PROGRESS = {"percent": 40, "filled": 4, "width": 10, "met": True}
_BOTS |= {"status": "on_track", "decision": "scale", "which": "all", "days": 3, "to_owner": False}
_BOTS |= {"noted": True, "on": True, "hour": 9, "week": 2, "over": True, "progress": _PROGRESS}
_BOTS |= {"counts": {"done": 1, "open": 1, "overdue": 1}, "followup": {"every": 7}}
_BOTS |= {"stage": 2, "k": 5, "closed": True, "fixed": 12.5, "median": 11.0, "idle_days": 60}
_BOTS |= {
    "first": {"median": 10, "q1": 8, "q3": 12, "n": 5},
    "now": {"median": 11, "q1": 9, "q3": 12, "n": 10},
}
# moderation: the review list's numbering, pre-moderated rounds
_BOTS |= {"n": 1, "shown": 1, "review": True, "premoderation": True}
# outages: the platform of a stalled channel (a label key), how long its posts have failed
_BOTS |= {"platform": "discord", "minutes": 12}
# A template's or a code's own parameters, where it reads one of the names above as something else.
_FOR_TEMPLATE: dict[str, dict[str, Any]] = {
    "vote/deck_card": {"current": "agree"},  # the person's earlier vote, a button's label key
    "followup/reminder": {"kind": "due_soon"},
    "actions/open": {"goals": 2},  # counts, where other templates list goals and ideas
    "help/status": {"ideas": 4, "goals": 2, "actions": 3},
}
_FOR_CODE = {"bad_transition": {"target": "goals"}}


def params(value: str) -> dict[str, Any]:
    """Every parameter a template reads; each that can hold a person's text (nested ones too) set to
    ``value``, as the core hands them over (an idea in a compact list as its `preview`)."""
    item = dict.fromkeys(_ITEM_STRINGS, value) | {k: _BOTS[k] for k in ("score", "number", "goal", "pilot")}
    item |= {k: _BOTS[k] for k in ("rank", "agree", "disagree", "pass", "common_ground", "divisive")}
    item |= {k: _BOTS[k] for k in ("urgency", "impact", "by_sector", "sectors_hidden", "sector_k")}
    item |= {"preview": preview(value), "progress": _PROGRESS, "status": "done", "overdue": True}
    item |= {"decision": "continue"}
    nested = {"ideas": [item], "goals": [item], "actions": [item], "kept": {"title": value, "text": value}}
    nested |= {"rounds": [{"title": value, "actions": [item]}], "pilots": [item]}
    nested |= {"done": [item], "open": [item], "overdue": [item]}
    return dict.fromkeys(_STRINGS, value) | _BOTS | nested


def messages(value: str, only: frozenset[str] | None = None) -> list[tuple[str, Message]]:
    """One message per template (and per error code), every slot holding ``value``; ``only`` names
    the templates to keep."""
    p = params(value)
    out = [
        (key.value, Message((Part(key.value, p | _FOR_TEMPLATE.get(key.value, {})),)))
        for key in PromptKey
        if key != PromptKey.ERROR
    ]
    out += [
        (
            f"errors/{code}",
            Message((Part(PromptKey.ERROR.value, p | {"code": code} | _FOR_CODE.get(code, {})),)),
        )
        for code in ERROR_CODES
    ]
    return [(name, m) for name, m in out if only is None or name in only]


# Where people's text lands, one template of each kind: ideas (a released idea, the compact release
# and results lists, the deck card, the summary), a goal, an action's owner (a display name), a round's
# title and purpose (card, charter), echoes of what was typed (invalid form, unknown subcommand, a
# time zone), a name in an error, and follow-up (a reminder, the progress post, the recap, a Delphi
# estimate's card, the list of actions).
SLOTS = frozenset(
    {
        "vote/release_idea",
        "vote/release_list",
        "vote/deck_card",
        "goals/results_list",
        "close/summary",
        "goals/card",
        "actions/card",
        "round/card",
        "join/charter",
        "errors/invalid_form",
        "help/help",
        "errors/action_taken_already",
        "errors/unknown_timezone",
        "followup/reminder",
        "followup/progress",
        "followup/recap",
        "delphi/card",
        "actions/list",
        "moderation/review_idea",
        "moderation/rejected_notice",
    }
)


def benign(value: str) -> str:
    """A value of the same shape with nothing in it that could be markup (and as true or false)."""
    calm = re.sub(r"\S", "x", strip_invisible(value))
    return calm or (" " if value else "")


@dataclass
class Posted:
    """What one message becomes on each platform."""

    slack: list[tuple[str, list[dict[str, Any]]]]  # (fallback text, blocks) per Slack message
    discord: list[dict[str, Any]]  # the JSON body of each Discord message
    discord_card: dict[str, Any]  # the JSON body of the same as a private card of the voting deck


_PROMPTS = Prompts()


def posted(message: Message) -> Posted:
    """``message`` through both ports' real escape and payload builders: as posted (or edited, sent
    privately or directly, which build the same payloads) and, on Discord, as a private card of the
    voting deck, which the adapter builds apart (one message, answered through the click). A Slack
    card is the first message `render_messages` builds (`SlackChatPort.respond`)."""
    slack = render_messages(_PROMPTS.render_message(message, slack_escape))
    rendered = _PROMPTS.render_message(message, render.escape)
    bodies = []
    for chunk in render.chunk(rendered):
        kw = _send_kwargs(chunk, None)
        body: dict[str, Any] = {
            "content": chunk.content,
            "allowed_mentions": kw["allowed_mentions"].to_dict(),
        }
        if kw.get("suppress_embeds"):
            body["flags"] = 1 << 2
        bodies.append(body)
    card = render.card(_PROMPTS.render_message(message, render.card_escape))
    card_body = {"content": card.content, "allowed_mentions": render.NO_MENTIONS.to_dict()}
    return Posted(slack, bodies, card_body)


# --- the judge ----------------------------------------------------------------------------------

PROBLEM_KINDS = ("link", "ping", "hidden", "markup", "rejected")


def slack_problems(text: str, blocks: Any) -> list[tuple[str, str]]:
    """(kind, detail) for one Slack message or view: its fallback ``text`` and its blocks."""
    return _slack_judged(text, blocks)[0]


def _slack_judged(text: str, blocks: Any) -> tuple[list[tuple[str, str]], list[str]]:
    shown, styles, live = slack_reading(blocks)
    out = [("markup", f"slack: {what}") for what in live]
    out += [("link", f"slack fallback: {what}") for what in slack_fallback_live(text)]
    out += [("hidden", f"slack {c}") for c in hidden_characters(shown) + hidden_characters(text)]
    out += [("rejected", f"slack: {e}") for e in validate_blocks(blocks)]
    return out, styles


def discord_problems(
    body: dict[str, Any], default_parse: tuple[str, ...] = ("users", "roles", "everyone")
) -> list[tuple[str, str]]:
    """(kind, detail) for one Discord message body (``content`` and ``allowed_mentions``)."""
    return _discord_judged(body, default_parse)[0]


def _discord_judged(
    body: dict[str, Any], default_parse: tuple[str, ...] = ("users", "roles", "everyone")
) -> tuple[list[tuple[str, str]], str]:
    content = body.get("content") or ""
    _shown, live, shadow = discord_reading(content)
    out = [("link", f"discord: {what}") for what in discord_live_links(shadow)]
    out += [("ping", f"discord: {what}") for what in discord_mentions(shadow)]
    if pings(body, default_parse=default_parse).any:
        out.append(("ping", "discord: allowed_mentions lets a mention notify"))
    out += [("hidden", f"discord {c}") for c in hidden_characters(content)]
    out += [("rejected", f"discord: {e.path} {e.code}") for e in message_errors(body)]
    return out, live


def problems(
    value: str, only: frozenset[str] | None = None, *, compare: bool = True
) -> list[tuple[str, str, str]]:
    """(template, kind, detail) for every template slot holding ``value`` (``only`` these templates);
    with ``compare``, "markup" also when the live markup differs from the same template holding a
    benign value of the same shape (so the difference came from the person's text)."""
    out: list[tuple[str, str, str]] = []
    calm = dict(messages(benign(value), only)) if compare else {}
    for name, message in messages(value, only):
        got = posted(message)
        styles: list[str] = []
        for text, blocks in got.slack:
            found, more = _slack_judged(text, blocks)
            out += [(name, kind, detail) for kind, detail in found]
            styles += more
        live = ""
        for body in got.discord:
            found, more_live = _discord_judged(body)
            out += [(name, kind, detail) for kind, detail in found]
            live += more_live
        found, card_live = _discord_judged(got.discord_card, ("users",))  # an interaction's default
        out += [(name, kind, f"{detail} (deck card)") for kind, detail in found]
        if not compare:
            continue
        ref = posted(calm[name])
        if _merged(styles) != _merged([st for _t, b in ref.slack for st in slack_reading(b)[1]]):
            out.append((name, "markup", "slack: styles differ from the benign text's"))
        if live != "".join(discord_reading(body["content"])[1] for body in ref.discord):
            out.append((name, "markup", "discord: live markup differs from the benign text's"))
        if card_live != discord_reading(ref.discord_card["content"])[1]:
            out.append(
                (name, "markup", "discord: live markup on the deck card differs from the benign text's")
            )
    return out


def _merged(styles: list[str]) -> list[str]:
    return [st for i, st in enumerate(styles) if i == 0 or styles[i - 1] != st]
