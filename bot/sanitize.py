"""One canonical form for user text, whatever platform it came from.

Text is canonicalised once, at intake, so that an idea reads byte for byte the same in every linked
channel and nothing in it tells which platform it was typed on (Chatham House: no affiliation):

* Slack's ``:shortcodes:`` become Unicode emoji, Discord's custom emoji ``<:name:id>`` become
  ``:name:`` (which is how a Slack custom emoji reads too);
* Slack mrkdwn and Discord markdown are reduced to the plain text they display: emphasis, spoilers,
  headings, quotes and code markers go, a masked link ``[text](url)`` or ``<url|text>`` becomes
  ``text (url)`` so its target is visible;
* every mention syntax is neutralised: ``<@U1|maya>`` reads ``@maya``, an id-only mention ``@…``,
  ``<!channel>``, ``@everyone`` and ``@here`` read with a full-width ``＠`` that no platform parses;
* characters that hide or reorder text are removed: controls (C0, C1), bidi controls, and every
  default-ignorable code point (zero-width characters, tag characters, Hangul fillers, variation
  selectors other than an emoji's), except a zero-width (non-)joiner inside an emoji sequence or a
  script that needs it. Stored text then equals displayed text (Trojan Source).

Renderers escape again for their platform (this is not the security boundary, it is what makes the
text the same everywhere). `comparison_key` says when two ideas are the same idea.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import re
import unicodedata
from collections.abc import Callable
from types import ModuleType

MAX_PASSES = 6
MAX_DISPLAY_NAME = 80

ZWJ, ZWNJ = "\u200d", "\u200c"
_EMOJI_VS = "\ufe0e\ufe0f"
_KEYCAP = "\u20e3"

# Default_Ignorable_Code_Point (Unicode DerivedCoreProperties) plus the interlinear annotation
# characters, which can carry text no one sees.
_IGNORABLE_RANGES = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFFB),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_ODD = re.compile("[^\t\n\x20-\x7e]")
_LINE_BREAKS = re.compile("\r\n|[\r\x0b\x0c\x85\u2028\u2029]")


@functools.cache
def _hidden_runs() -> re.Pattern[str]:
    """Runs of controls, format characters, default-ignorables, surrogates and noncharacters (tabs and
    line breaks excepted). Built once from the running Python's Unicode tables."""
    # Controls, format characters and surrogates only occur in planes 0, 1 and 14 (a quick scan).
    planes = itertools.chain(range(0x20000), range(0xE0000, 0xE1000))
    hidden = [(cp, cp) for cp in planes if unicodedata.category(chr(cp)) in ("Cc", "Cf", "Cs")]
    hidden = [r for r in hidden if chr(r[0]) not in "\n\t"]
    hidden += [*_IGNORABLE_RANGES, (0xFDD0, 0xFDEF)]
    hidden += [(plane + 0xFFFE, plane + 0xFFFF) for plane in range(0, 0x110000, 0x10000)]
    merged: list[tuple[int, int]] = []
    for low, high in sorted(hidden):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    return re.compile("[" + "".join(f"\\U{low:08x}-\\U{high:08x}" for low, high in merged) + "]+")


@functools.cache
def _emoji() -> ModuleType:
    """The emoji tables (~3 MiB), loaded at the first text that needs them (a shortcode, or a
    presentation selector), not at start."""
    import emoji

    return emoji


@functools.cache
def _vs_bases() -> frozenset[str]:
    """Characters an emoji presentation selector (U+FE0E/U+FE0F) may follow."""
    bases = set()
    for seq in _emoji().EMOJI_DATA:
        for i, ch in enumerate(seq):
            if ch in _EMOJI_VS and i > 0:
                bases.add(seq[i - 1])
    return frozenset(bases)


def _joinable(ch: str) -> bool:
    # Scripts that need ZWJ/ZWNJ (Arabic, Persian, Indic, ...) and emoji sequences: never ASCII.
    return ord(ch) > 0x7F and unicodedata.category(ch)[0] in "LMS"


def _kept_of(m: re.Match[str]) -> str:
    """What stays of a run of hidden characters: an emoji's presentation selector right after it, and
    one joiner between two characters that can join."""
    run, text = m.group(0), m.string
    last = text[m.start() - 1] if m.start() else ""
    kept = []
    for i, ch in enumerate(run):
        after = run[i + 1] if i + 1 < len(run) else text[m.end() : m.end() + 1]
        if ch in _EMOJI_VS and last in _vs_bases() and (not last.isascii() or after == _KEYCAP):
            kept.append(ch)  # a bare "1\ufe0f" is no emoji, "1\ufe0f\u20e3" is
        elif ch in (ZWJ, ZWNJ) and last and after and _joinable(last) and _joinable(after):
            kept.append(ch)
        else:
            continue
        last = ch
    return "".join(kept)


def _strip_hidden(text: str) -> str:
    return _hidden_runs().sub(_kept_of, text)


def strip_invisible(text: str) -> str:
    """Only the removal of hidden characters (controls, bidi, zero-width, tags, noncharacters), line
    breaks made ``\\n``: what renderers apply to every value they show, canonical or not."""
    if not _ODD.search(text):  # printable ASCII, tabs and newlines: nothing to do (most values)
        return text
    return _strip_hidden(_LINE_BREAKS.sub("\n", _SURROGATE.sub("\ufffd", text)))


# --- platform tokens: mentions, links, custom emoji, timestamps ----------------------------------

_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}
_BROADCAST = re.compile(r"(?<![\w@＠])@(everyone|here|channel)\b", re.IGNORECASE)
_TOKEN = re.compile(r"<([^<>]{1,500})>")
_URL = re.compile(r"^[a-z][a-z0-9+.\-]{0,30}:[^\s|]+$", re.IGNORECASE)
_CUSTOM_EMOJI = re.compile(r"^a?:(\w{1,64}):\d{1,32}$")
_TIMESTAMP = re.compile(r"^t:(-?\d{1,12})(?::[tTdDfFsSR])?$")
_SLASH_COMMAND = re.compile(r"^/([\w\- ]{1,100}):\d{1,32}$")


def _named(label: str | None, sigil: str) -> str:
    """A mention as plain text: its label if the syntax carried one, else the sigil alone."""
    label = (label or "").strip().lstrip("@#")
    return sigil + (label or "…")


def _token(m: re.Match[str]) -> str:
    """One ``<…>`` token of Slack or Discord syntax as the plain text it stands for."""
    inner = m.group(1)
    target, bar, label = inner.partition("|")
    label_or_none = label if bar else None
    if target[:1] in ("@", "#"):  # users, roles (<@&1>), channels, on either platform
        return _named(label_or_none, target[0])
    if target.startswith("!"):  # Slack specials: <!here>, <!subteam^S1|@team>, <!date^…|fallback>
        word = target[1:].split("^", 1)[0].lower()
        if word in ("here", "channel", "everyone"):
            return "＠" + word
        if word == "subteam":
            return _named(label_or_none, "@")
        return label.strip() if bar else word
    if m_emoji := _CUSTOM_EMOJI.match(target):
        return f":{m_emoji.group(1)}:"
    if m_time := _TIMESTAMP.match(target):
        try:
            when = dt.datetime.fromtimestamp(int(m_time.group(1)), dt.UTC)
        except (OverflowError, OSError, ValueError):
            return m_time.group(1)
        return when.strftime("%Y-%m-%d %H:%M UTC")
    if m_cmd := _SLASH_COMMAND.match(target):
        return "/" + m_cmd.group(1)
    if target.startswith("id:"):  # Discord's <id:customize> navigation links
        return target[3:]
    if _URL.match(target):
        return _link(label_or_none, target)
    return m.group(0)


def _link(text: str | None, url: str) -> str:
    text = (text or "").strip()
    shown = url.removeprefix("mailto:").removeprefix("tel:")
    return shown if not text or text in (url, shown) else f"{text} ({shown})"


# --- emoji ------------------------------------------------------------------------------------

_SHORTCODE = re.compile(r"(?<![\w])(:[a-z0-9_+\-']{1,64}:)", re.IGNORECASE)
_SKIN_TONE = re.compile(r"^:skin-tone-([2-6]):$")
_FLAG = re.compile(r"^:flag-([a-z]{2}):$")


@functools.lru_cache(maxsize=4096)
def _emoji_for(code: str) -> str:
    lower = code.lower()
    if m := _SKIN_TONE.match(lower):
        return chr(0x1F3FB + int(m.group(1)) - 2)
    if m := _FLAG.match(lower):
        flag = "".join(chr(0x1F1E6 + ord(c) - ord("a")) for c in m.group(1))
        return flag if flag in _emoji().EMOJI_DATA else code
    found = _emoji().emojize(lower, language="alias")
    return found if found != lower and _emoji().is_emoji(found) else code


def _emojize(text: str) -> str:
    return _SHORTCODE.sub(lambda m: _emoji_for(m.group(1)), text)


# --- markdown (both dialects) -----------------------------------------------------------------

_FENCE = re.compile(r"```\n?(.*?)\n?```", re.S)
_CODE = re.compile(r"(`+)(?=[^`\n])(.+?)(?<=[^`])\1(?!`)")
_MASKED_LINK = re.compile(r"\[([^\[\]\n]{1,500})\]\(\s*<?((?:[^()\s<>]|\([^()\s<>]*\)){1,2000})>?\s*\)")
_HEADING = re.compile(r"^(?:#{1,6}|-#)[ \t]+", re.M)
_QUOTE = re.compile(r"^(?:>>>|>)(?:[ \t]+|$)", re.M)


def _emphasis(delim: str, *, intraword: bool) -> re.Pattern[str]:
    """A pair of ``delim`` around text on one line, flanking as both platforms require: the opener is
    followed by a non-space, the closer preceded by one; unless ``intraword``, neither touches a word
    character outside (so ``2*3*4`` and ``snake_case_name`` stay as typed)."""
    d = re.escape(delim)
    before = "" if intraword else rf"(?<![\w\\]{d})"  # after the delimiter: cheaper to search
    after = "" if intraword else r"(?!\w)"
    return re.compile(rf"{d}{before}(?=[^\s{d[-1]}])([^\n]*?[^\s\\]){d}{after}")


_EMPHASIS = (
    _emphasis("||", intraword=True),
    _emphasis("~~", intraword=True),
    _emphasis("**", intraword=True),
    _emphasis("__", intraword=False),
    _emphasis("*", intraword=False),
    _emphasis("_", intraword=False),
    _emphasis("~", intraword=False),
)


def _plain_markdown(text: str) -> str:
    text = _FENCE.sub(lambda m: m.group(1), text)
    text = _CODE.sub(lambda m: m.group(2), text)
    text = _MASKED_LINK.sub(lambda m: _link(m.group(1), m.group(2)), text)
    text = _HEADING.sub("", text)
    text = _QUOTE.sub("", text)
    for pattern in _EMPHASIS:
        text = pattern.sub(lambda m: m.group(1), text)
    return text


# --- whitespace -------------------------------------------------------------------------------

_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def _tidy(text: str, *, single_line: bool) -> str:
    if single_line:
        return " ".join(text.split())
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _pass(text: str, *, single_line: bool) -> str:
    text = _LINE_BREAKS.sub("\n", text)
    text = unicodedata.normalize("NFC", _strip_hidden(text))
    text = _ENTITY.sub(lambda m: _ENTITIES[m.group(1)], text)  # Slack sends &amp; &lt; &gt;
    text = _TOKEN.sub(_token, text)
    text = _BROADCAST.sub(lambda m: "＠" + m.group(1), text)
    text = _emojize(text)
    text = _plain_markdown(text)
    text = _strip_hidden(text)
    return _tidy(text, single_line=single_line)


def _fixpoint(step: Callable[[str], str], text: str) -> str:
    # One reduction can uncover another (``**<@U1>**``, ``&amp;lt;``); passes repeat until nothing
    # changes, which is what makes the result idempotent.
    text = _SURROGATE.sub("\ufffd", text)  # a lone surrogate cannot even be stored
    for _ in range(MAX_PASSES):
        done = step(text)
        if done == text:
            break
        text = done
    return text


def canonical_text(text: str) -> str:
    """The canonical form of a multi-line text (module docstring). Idempotent."""
    return _fixpoint(lambda t: _pass(t, single_line=False), text)


def one_line(text: str) -> str:
    """`canonical_text` on one line (titles, names, short fields)."""
    return _fixpoint(lambda t: _pass(t, single_line=True), text)


def display_name(name: str) -> str:
    """A platform profile name as it may be shown (an action's owner): one canonical line, capped."""
    return one_line(one_line(name)[:MAX_DISPLAY_NAME])


def comparison_key(text: str) -> str:
    """Equal for two texts that are the same idea once canonical, ignoring case, spacing and
    punctuation (``More bike lanes!`` and ``more  bike-lanes``)."""
    folded = unicodedata.normalize("NFKC", canonical_text(text)).casefold()
    return "".join(
        ch
        for ch in folded
        if unicodedata.category(ch)[0] in "LMNS" and unicodedata.category(ch) != "Sk" and ch not in _EMOJI_VS
    )


def storable(text: str) -> bool:
    """Whether ``text`` can reach the database as it is: no lone surrogate (it is not UTF-8 at all)
    and no NUL (PostgreSQL refuses it in text). No platform sends either; adapters refuse ids and
    codes holding one, and free text is made canonical by `canonical_text`."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
