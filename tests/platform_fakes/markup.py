"""What a person would see in what the bot posts, by each platform's own rules: which characters are
live markup, which links and mentions would work, which characters hide. The property and fuzz tests
judge the payloads the adapters build with these, independently of the code that renders them.

Discord (markdown in ``content``): a backslash before ASCII punctuation shows that character
literally; inside a code span everything is literal until the closing backticks; everything else that
can start markup (emphasis, spoilers, code, quotes, headings, lists, masked links, ``<…>`` mentions,
emoji and timestamps, ``@everyone``/``@here``, and a link's ``scheme:``) is live.

Slack (Block Kit): a ``rich_text`` ``text`` element is shown literally with its style; any other
rich-text element (``link``, ``user``, ``usergroup``, ``broadcast``, ``channel``, ``emoji``) is live,
and so is every ``mrkdwn`` text object (Slack parses it). The fallback ``text`` is mrkdwn: a raw
``<`` there could open a link or a mention. `slack_seen` reads a message as a person does (its text,
its buttons, what is live): tests that read what the bot showed on Slack use it, not blocks of their
own parsing.
"""

from __future__ import annotations

import functools
import re
import string
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import emoji

# --- hidden characters ----------------------------------------------------------------------------

_INVISIBLE = "\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u3164\ufe00-\ufe0f\uffa0\ufdd0-\ufdef"
_INVISIBLE += "\U000e0000-\U000e0fff\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
_VS_PAIRS = frozenset(
    seq[i - 1 : i + 1] for seq in emoji.EMOJI_DATA for i, ch in enumerate(seq) if i and ch in "\ufe0e\ufe0f"
)


@functools.cache
def _suspects() -> re.Pattern[str]:
    categories = ("Cc", "Cf", "Cs", "Zl", "Zp")
    points = [cp for cp in range(0x110000) if unicodedata.category(chr(cp)) in categories]
    points += [plane + low for plane in range(0, 0x110000, 0x10000) for low in (0xFFFE, 0xFFFF)]
    ranges: list[list[int]] = []
    for cp in sorted(set(points) - {ord("\n"), ord("\t")}):
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    listed = "".join(f"\\U{low:08x}-\\U{high:08x}" for low, high in ranges)
    return re.compile(f"[{listed}{_INVISIBLE}]")


def hidden_characters(text: str) -> list[str]:
    """Characters in ``text`` that no one sees and that nothing needs: controls other than line breaks
    and tabs, format characters (bidi controls, zero-width characters, tags), variation selectors,
    fillers and noncharacters. Allowed: a zero-width (non-)joiner between two non-ASCII letters, marks
    or symbols (Persian, Indic, emoji sequences), and an emoji's own presentation selector."""
    found = []
    for m in _suspects().finditer(text):
        ch, i = m.group(0), m.start()
        prev, nxt = text[i - 1 : i], text[i + 1 : i + 2]
        if ch in "\u200c\u200d" and prev and nxt and all(_visible_non_ascii(c) for c in (prev, nxt)):
            continue
        if ch in "\ufe0e\ufe0f" and prev + ch in _VS_PAIRS:
            continue
        found.append(f"U+{ord(ch):04X}")
    return found


def _visible_non_ascii(ch: str) -> bool:
    return ord(ch) > 0x7F and unicodedata.category(ch)[0] in "LMS"


# --- Discord --------------------------------------------------------------------------------------

_PUNCTUATION = frozenset(string.punctuation)
_DISCORD_LIVE = frozenset("*_~|<>[]()#@:-+")
_LINK = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:/|\[[^\]\n]*\]\(")
_MENTION = re.compile(r"<[@#/:]|<a:|<t:|<id:|@everyone|@here")


_DISCORD_TOKEN = re.compile(r"\\[!-/:-@\[-`{-~]|`{1,3}|[*_~|<>\[\]()#@:+\-.\\]|[^*_~|<>\[\]()#@:+\-.\\`]+")


def discord_reading(content: str) -> tuple[str, str, str]:
    """(what is shown, the live markup characters in order, the text with everything that is not live
    blanked out) for a Discord message ``content``."""
    shown: list[str] = []
    live: list[str] = []
    shadow: list[str] = []
    pos, n = 0, len(content)
    while pos < n:
        tok = _DISCORD_TOKEN.match(content, pos)
        assert tok is not None
        text, pos = tok.group(0), tok.end()
        if text[0] == "\\" and len(text) == 2:  # an escape: the character, shown literally
            shown.append(text[1])
            shadow.append("\0\0")
        elif text[0] == "`":
            live.append(text)
            shadow.append(text)
            end = content.find(text, pos)
            if end == -1:  # never closed: literal backticks
                shown.append(text)
                continue
            shown.append(content[pos:end])  # a code span: everything literal up to its end
            shadow.append("\0" * (end - pos) + text)
            live.append(text)
            pos = end + len(text)
        else:
            if text in _DISCORD_LIVE or (text == "." and _after_list_number(content, pos - 1)):
                live.append(text)
            shown.append(text)
            shadow.append(text)
    return "".join(shown), "".join(live), "".join(shadow)


def _after_list_number(content: str, i: int) -> bool:
    """Whether ``content[i]`` ends a line's leading number (an ordered list: ``1. item``)."""
    j = i
    while j and content[j - 1].isdigit():
        j -= 1
    while j and content[j - 1] in " \t":
        j -= 1
    return j < i and content[j:i].strip() != "" and (j == 0 or content[j - 1] == "\n")


def discord_live_links(shadow: str) -> list[str]:
    """Links a person could click in a message (its `discord_reading` shadow): a ``scheme:/`` or a
    masked ``[text](`` that is not escaped."""
    return _LINK.findall(shadow)


def discord_mentions(shadow: str) -> list[str]:
    """Mention, emoji, timestamp and command syntax Discord would render as such (in a shadow)."""
    return _MENTION.findall(shadow)


# --- Slack ----------------------------------------------------------------------------------------


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)


def slack_reading(blocks: Any) -> tuple[str, list[str], list[str]]:
    """(the text shown (rich-text elements and text objects), the styles of rich text in order (runs
    of one style merged, whitespace-only runs left out), what is live) for Block Kit ``blocks`` or a
    view."""
    shown: list[str] = []
    styles: list[str] = []
    live: list[str] = []
    for obj in _objects(blocks):
        kind = obj.get("type")
        if kind in ("mrkdwn", "plain_text") and isinstance(obj.get("text"), str):
            shown.append(obj["text"] + "\n")
            if kind == "mrkdwn":
                live.append(f"mrkdwn text: {obj['text']!r}")
        elif kind == "rich_text_section" or kind == "rich_text_quote" or kind == "rich_text_preformatted":
            for el in obj.get("elements", []):
                if el.get("type") != "text":
                    live.append(f"rich text {el.get('type')}")
                    continue
                shown.append(el["text"])
                style = ",".join(sorted(k for k, on in (el.get("style") or {}).items() if on))
                if el["text"].strip() and (not styles or styles[-1] != style):
                    styles.append(style)
            if kind != "rich_text_section":
                live.append(kind)
            shown.append("\n")
    return "".join(shown), styles, live


def slack_fallback_live(text: str) -> list[str]:
    """Raw angle brackets in a mrkdwn ``text`` field: each could open a link or a mention."""
    return re.findall(r"<[^>]*>?", text)


_SLACK_PINGS = ("user", "usergroup", "broadcast")


def slack_pings(text: str, blocks: Any) -> list[str]:
    """What would notify someone in one Slack message: a ``user``, ``usergroup`` or ``broadcast``
    rich-text element, or a ``<@…>`` / ``<!…>`` in the fallback ``text`` or in any mrkdwn object."""
    found = [
        f"rich text {el.get('type')}"
        for obj in _objects(blocks)
        if str(obj.get("type", "")).startswith("rich_text_")
        for el in obj.get("elements", [])
        if isinstance(el, dict) and el.get("type") in _SLACK_PINGS
    ]
    mrkdwn = [
        o["text"] for o in _objects(blocks) if o.get("type") == "mrkdwn" and isinstance(o.get("text"), str)
    ]
    for raw in (text, *mrkdwn):
        found += [c for c in slack_fallback_live(raw) if c.startswith(("<@", "<!"))]
    return found


@dataclass(frozen=True)
class SlackSeen:
    """One Slack message (its ``blocks``) as a person sees it: the one reader every test that reads
    Slack messages uses (the deck card, what a channel shows, private replies, the contract)."""

    text: str  # the text of its blocks, one block a line (rich text, sections, headers, context)
    buttons: tuple[tuple[str, str], ...]  # (label, action_id) of each button, in order
    styles: tuple[str, ...]  # the styles of the rich text, as `slack_reading` lists them
    live: tuple[str, ...]  # what Slack would render as markup, a link or a mention

    @property
    def action_ids(self) -> dict[str, str]:
        """label -> action_id (the last button of a label wins)."""
        return dict(self.buttons)


def slack_seen(blocks: Any) -> SlackSeen:
    """`SlackSeen` of Block Kit ``blocks`` (a list, or None for a message without blocks)."""
    lines: list[str] = []
    buttons: list[tuple[str, str]] = []
    styles: list[str] = []
    live: list[str] = []
    for block in blocks or []:
        if block.get("type") == "actions":
            buttons += [
                (el["text"]["text"], el["action_id"])
                for el in block.get("elements", [])
                if el.get("type") == "button"
            ]
            continue
        shown, block_styles, block_live = slack_reading([block])
        lines.append(shown.removesuffix("\n"))
        for style in block_styles:
            if not styles or styles[-1] != style:
                styles.append(style)
        live += block_live
    return SlackSeen("\n".join(lines), tuple(buttons), tuple(styles), tuple(live))
