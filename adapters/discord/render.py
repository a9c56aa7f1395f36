"""Pure conversions between the core's neutral output and Discord's limits (no network here).

* :func:`escape` makes user text inert: no mention can fire, no markdown or link works.
* :func:`chunk` splits a :class:`~bot.messages.Rendered` into messages of at most 2,000
  characters and five rows of five buttons, keeping each block's buttons with its text.
* :func:`form_pages` splits a :class:`~bot.forms.Form` into modals of at most five components.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import discord

from adapters.faults import fault
from bot.forms import Form, FormField
from bot.messages import Button, Rendered
from bot.sanitize import strip_invisible

log = logging.getLogger("convene.discord")

MAX_CONTENT = 2000
MAX_ROWS = 5
MAX_ROW_BUTTONS = 5
MAX_BUTTON_LABEL = 80
MAX_MODAL_TITLE = 45
MAX_MODAL_ITEMS = 5
MAX_LABEL = 45
MAX_DESCRIPTION = 100
MAX_TEXT_INPUT = 4000
MAX_TEXT_DISPLAY = 4000
MAX_SELECT_OPTIONS = 25

NO_MENTIONS = discord.AllowedMentions.none()

_STYLES = {
    "primary": discord.ButtonStyle.primary,
    "danger": discord.ButtonStyle.danger,
    "default": discord.ButtonStyle.secondary,
}

# Every ASCII character that can start Discord markup: emphasis, spoilers, code, quotes, headings,
# subtext, lists, masked links, <…> mentions, emoji, timestamps and commands, @everyone, and the
# "scheme:" of a link. Discord shows a backslash-escaped punctuation character literally, without
# the backslash.
_SPECIAL = re.compile(r"([\\*_~`|<>\[\]()#@:+\-])")
_ORDERED_LIST = re.compile(r"^(\s*\d+)\.", re.M)
_NO_CUT_BEFORE = re.compile("[\u200c\u200d\ufe0e\ufe0f\u20e3\U0001f3fb-\U0001f3ff]")


def escape(text: str) -> str:
    """User text made inert in Discord markup: every character that could start markdown, a masked
    or bare link, a mention or a ping is backslash-escaped, all of them, wherever they are, so
    the text reads exactly as typed. Hidden characters go, whether or not the value was canonical,
    and no zero-width character is added (it would hide in the text);
    ``AllowedMentions.none()`` on every send is the second, independent layer."""
    return _ORDERED_LIST.sub(r"\1\\.", _SPECIAL.sub(r"\\\1", strip_invisible(text)))


def intro_text(intro: str) -> str:
    """A form intro the core rendered whole (it may hold a round's title and purpose): every
    character literal, the neutral bold markers dropped."""
    return escape(intro.replace("**", ""))


def _safe_cut(text: str, cut: int) -> int:
    """``cut``, moved back so that no escape loses its backslash and no emoji sequence is split."""
    low = cut // 2
    while cut > low and (_NO_CUT_BEFORE.match(text, cut) or _odd_backslashes(text, cut)):
        cut -= 1
    return cut


def fit(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters without breaking an escape or an emoji sequence."""
    return text if len(text) <= limit else text[: _safe_cut(text, limit)]


def _odd_backslashes(text: str, end: int) -> bool:
    n = 0
    while end - n > 0 and text[end - n - 1] == "\\":
        n += 1
    return n % 2 == 1


@dataclass(frozen=True, slots=True)
class Chunk:
    """One Discord message: content plus button rows."""

    content: str
    rows: tuple[tuple[Button, ...], ...] = ()


def _rows(buttons: tuple[Button, ...]) -> list[tuple[Button, ...]]:
    return [buttons[i : i + MAX_ROW_BUTTONS] for i in range(0, len(buttons), MAX_ROW_BUTTONS)]


def _split_text(text: str, limit: int = MAX_CONTENT) -> list[str]:
    """Split at line breaks (then spaces, then anywhere) into pieces of at most ``limit``."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit + 1)
        if cut <= 0:
            cut = rest.rfind(" ", 0, limit + 1)
        if cut <= 0:
            cut = _safe_cut(rest, limit)
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip("\n ")
    if rest or not pieces:
        pieces.append(rest)
    return pieces


def chunk(message: Rendered) -> list[Chunk]:
    """Messages for ``message``: blocks joined by blank lines while they fit in 2,000 characters
    and five button rows; a block longer than that is split and keeps its buttons on its last piece."""
    out: list[Chunk] = []
    text = ""
    rows: list[tuple[Button, ...]] = []

    def flush() -> None:
        nonlocal text, rows
        if text or rows:
            out.append(Chunk(text, tuple(rows)))
        text, rows = "", []

    for block in message.blocks:
        block_rows = _rows(block.buttons)
        pieces = _split_text(block.text) if block.text else [""]
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            piece_rows = block_rows if last else []
            joined = f"{text}\n\n{piece}" if text and piece else (text or piece)
            if len(joined) > MAX_CONTENT or len(rows) + len(piece_rows) > MAX_ROWS:
                flush()
                joined = piece
            text = joined
            for row in piece_rows:
                if len(rows) == MAX_ROWS:
                    flush()
                rows.append(row)
    flush()
    return out or [Chunk("")]


# A person's value on a deck card, marked by `card_escape` so that `card` can tell it from the bot's own
# text (noncharacters: `strip_invisible` removes them from every value, so no one can type one).
VALUE_START, VALUE_END = "\ufdd0", "\ufdd1"
_VALUE = re.compile("\ufdd0([^\ufdd0\ufdd1]*)\ufdd1")


def card_escape(text: str) -> str:
    """`escape`, the value marked for `card` (render a deck card's message with it)."""
    return VALUE_START + escape(text) + VALUE_END


def card(message: Rendered) -> Chunk:
    """A private card (the voting deck) as one message: an interaction update replaces one message,
    and every button is kept. A card over 2,000 characters (an idea's text doubles in length where
    every character needs an escape) shortens the longest values people wrote (marked by
    `card_escape`) to a common length, never the bot's own lines ("Idea 7", "Your vote: Agree") nor
    its markup; each cut keeps escapes and emoji sequences whole and ends in an ellipsis."""
    text = "\n\n".join(b.text for b in message.blocks if b.text)
    over = len(text) - text.count(VALUE_START) - text.count(VALUE_END) - MAX_CONTENT
    cap = _cap([len(m.group(1)) for m in _VALUE.finditer(text)], over) if over > 0 else None
    if cap is not None:
        text = _VALUE.sub(
            lambda m: m.group(1) if len(m.group(1)) <= cap + 1 else fit(m.group(1), cap) + "…", text
        )
    text = text.replace(VALUE_START, "").replace(VALUE_END, "")
    if len(text) > MAX_CONTENT:  # no value people wrote was long enough to take the cut
        text = fit(text, MAX_CONTENT - 1) + "…"
    buttons = message.buttons[: MAX_ROWS * MAX_ROW_BUTTONS]
    return Chunk(text, tuple(_rows(buttons)))


def _cap(lengths: list[int], over: int) -> int | None:
    """The length values longer than it are cut to (each cut one gains an ellipsis) so that they lose
    at least ``over`` characters together, or None when cutting them all is not enough."""

    def saved(cap: int) -> int:
        return sum(n - cap - 1 for n in lengths if n > cap + 1)

    if not lengths or saved(0) < over:
        return None
    low, high = 0, max(lengths)  # saved(low) >= over > saved(high) == 0
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if saved(mid) >= over else (low, mid)
    return low


def view_for(rows: tuple[tuple[Button, ...], ...]) -> discord.ui.View | None:
    """A stopped View (so discord.py keeps nothing in memory): clicks are decoded from the
    ``custom_id`` by the client's ``DynamicItem`` classes, which also works after a restart."""
    if not rows:
        return None
    view = discord.ui.View(timeout=None)
    for r, row in enumerate(rows):
        for b in row:
            view.add_item(
                discord.ui.Button(
                    label=b.label[:MAX_BUTTON_LABEL],
                    custom_id=b.action_id,
                    style=_STYLES.get(b.style, discord.ButtonStyle.secondary),
                    row=r,
                )
            )
    view.stop()
    return view


# --- modals --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page:
    """One modal of a form: ``number`` counts from 1 of ``total``."""

    number: int
    total: int
    fields: tuple[FormField, ...]
    intro: str = ""


def form_pages(form: Form) -> list[Page]:
    """A form in modals of at most five components. A form that fits with room to spare shows
    its intro (the charter, for joining) as a text display at the top; a longer one (the goal
    form has ten fields) becomes several modals chained by a private "continue" button."""
    fields = form.fields
    if len(fields) < MAX_MODAL_ITEMS and form.intro:
        return [Page(1, 1, fields, form.intro)]
    groups = [fields[i : i + MAX_MODAL_ITEMS] for i in range(0, len(fields), MAX_MODAL_ITEMS)] or [()]
    return [Page(i + 1, len(groups), g) for i, g in enumerate(groups)]


def _label_text(label: str) -> tuple[str, str | None]:
    if len(label) <= MAX_LABEL:
        return label, None
    return label[: MAX_LABEL - 1].rstrip() + "…", label[:MAX_DESCRIPTION]


def field_item(field: FormField, initial: str | None = None) -> discord.ui.Item[discord.ui.Modal]:
    """A Label (type 18) around a TextInput, or around a Select for choice fields."""
    value = field.initial if initial is None else initial
    text, description = _label_text(field.label)
    component: discord.ui.Item[discord.ui.Modal]
    if field.kind == "select" and 0 < len(field.options) <= MAX_SELECT_OPTIONS:
        component = discord.ui.Select(
            custom_id=field.name,
            options=[
                discord.SelectOption(label=o.label[:100], value=o.value[:100], default=o.value == value)
                for o in field.options
            ],
            min_values=1 if field.required else 0,
            max_values=1,
            required=field.required,
        )
    else:
        max_length = min(field.max_length or MAX_TEXT_INPUT, MAX_TEXT_INPUT)
        min_length = min(field.min_length, max_length) if field.min_length else None
        component = discord.ui.TextInput(
            custom_id=field.name,
            style=discord.TextStyle.paragraph if field.kind == "long" else discord.TextStyle.short,
            required=field.required,
            # Discord's counter helps people; the core validates again whatever arrives.
            max_length=max_length,
            min_length=min_length,
            default=value[:max_length] or None,
            placeholder=field.placeholder[:100] or None,
        )
    return discord.ui.Label(text=text, description=description, component=component)


class FormModal(discord.ui.Modal):
    """A modal built from a core Form page. Its submission is handled by the client's
    ``on_interaction`` (restart-safe), so ``on_submit`` does nothing here."""

    def __init__(self, title: str, custom_id: str, page: Page, initials: dict[str, str]) -> None:
        super().__init__(title=title[:MAX_MODAL_TITLE], custom_id=custom_id, timeout=None)
        if page.intro:
            self.add_item(discord.ui.TextDisplay(fit(intro_text(page.intro), MAX_TEXT_DISPLAY)))
        for f in page.fields:
            self.add_item(field_item(f, initials.get(f.name)))

    async def on_submit(self, interaction: discord.Interaction) -> None:
        return None

    async def on_error(self, interaction: discord.Interaction, error: Exception, /, *_: Any) -> None:
        # discord.py refreshes this modal from the submitted components before on_submit; one it
        # cannot read changes nothing here (on_interaction answers the submit), so no traceback.
        log.info("discord: a form submit discord.py could not read (%s)", fault(error))


def modal_values(components: object) -> dict[str, str]:
    """``{custom_id: value}`` from a MODAL_SUBMIT payload's components (Labels, action rows,
    text inputs, selects), tolerant of anything malformed."""
    values: dict[str, str] = {}
    stack: list[object] = [components]  # a loop, not recursion: nesting cannot exhaust the stack
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(reversed(node))
            continue
        if not isinstance(node, dict):
            continue
        cid = node.get("custom_id")
        if isinstance(cid, str):
            if isinstance(node.get("value"), str):
                values[cid] = node["value"]
            elif isinstance(node.get("values"), list):
                picked = [v for v in node["values"] if isinstance(v, str)]
                values[cid] = picked[0] if picked else ""
        stack.extend((node.get("component"), node.get("components")))
    return values
