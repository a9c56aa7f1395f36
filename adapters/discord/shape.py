"""What discord.py cannot be trusted to read, checked before it reads it.

discord.py indexes interaction payloads directly, partly in the gateway reader (guarded by the
client's parsers) and partly in tasks of its own (the command tree, the DynamicItem dispatch), where
an error is a traceback and no answer at all. These checks run first; each returns why a payload
is refused (field names only, for the log) or None. One concern only: shape. Whether a code or a
button means anything is the core's to say.
"""

from __future__ import annotations

import re
from typing import Any

import discord

from bot.sanitize import storable

# Interaction types a message can answer: a slash command, a click, a modal submit.
ANSWERABLE = frozenset({2, 3, 5})
# Option types convene commands use: subcommand, subcommand group, string, integer, boolean.
OPTION_TYPES = frozenset({1, 2, 3, 4, 5})
_SNOWFLAKE = re.compile(r"[0-9]{1,20}")
_TOKEN = re.compile(r"[A-Za-z0-9._-]{1,500}")
MESSAGE_COMPONENT = 3  # an interaction type: a click
ACTION_ROW, BUTTON = 1, 2  # component types
COMPONENTS_V2 = 1 << 15  # a message flag
MAX_ROWS = MAX_ROW_BUTTONS = 5
MAX_DEPTH = 8  # interaction data nests 4 deep at most (a modal's Label > input); deeper is refused


def answerable(data: Any) -> bool:
    """Whether an INTERACTION_CREATE payload can be answered at all: a snowflake id, a token, and a
    type a message answers (a command, a click, a form submit)."""
    return (
        isinstance(data, dict)
        and isinstance(data.get("type"), int)
        and data["type"] in ANSWERABLE
        and isinstance(data.get("id"), str)
        and _SNOWFLAKE.fullmatch(data["id"]) is not None
        and isinstance(data.get("token"), str)
        and _TOKEN.fullmatch(data["token"]) is not None
    )


def frame_problem(data: dict[str, Any]) -> str | None:
    """What discord.py keeps as it comes and reads only later, in tasks of its own: ids (a guild id
    of ``{}`` passes its parser and breaks the command tree) and a clicked message."""
    for key in ("guild_id", "channel_id", "application_id"):
        value = data.get(key)
        if value is not None and not (isinstance(value, str) and _SNOWFLAKE.fullmatch(value)):
            return f"a {key} that is not a snowflake"
    if data["type"] == MESSAGE_COMPONENT and "message" in data:
        return clicked_message_problem(data["message"])
    return None


def data_problem(data: Any) -> str | None:
    """Why an interaction's ``data`` must not reach the core, or None: a string no database can
    store (a lone surrogate, a NUL: Discord sends neither), or nesting deeper than any interaction."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if not storable(node):
                return "a string that cannot be stored"
        elif isinstance(node, dict | list):
            if depth >= MAX_DEPTH:
                return "nesting deeper than any interaction"
            items = [*node.keys(), *node.values()] if isinstance(node, dict) else node
            stack.extend((item, depth + 1) for item in items)
    return None


def command_problem(data: Any) -> str | None:
    """Why discord.py's command tree cannot read a command's ``data`` safely, or None. The tree
    indexes it directly in a task of its own, where a wrong shape would end in a traceback."""
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return "a command without a name"
    if data.get("type", 1) != 1:
        return "a command that is not a slash command"  # convene has no context menu commands
    guild_id = data.get("guild_id")
    if guild_id is not None and not (isinstance(guild_id, str) and _SNOWFLAKE.fullmatch(guild_id)):
        return "a command guild id that is not a snowflake"
    if data.get("resolved") not in (None, {}):
        return "resolved items no convene command takes"
    stack: list[Any] = [data.get("options", [])]
    while stack:
        options = stack.pop()
        if not isinstance(options, list):
            return "options that are not a list"
        for o in options:
            if not isinstance(o, dict) or not isinstance(o.get("name"), str):
                return "an option without a name"
            kind = o.get("type")
            if (
                not isinstance(kind, int)
                or kind not in OPTION_TYPES
                or not isinstance(o.get("focused", False), bool)
            ):
                return "an option of a type no convene command takes"
            if kind in (1, 2):  # a subcommand (group): its own options follow
                stack.append(o.get("options", []))
            elif not isinstance(o.get("value"), str | int | float):
                return "an option without a value"
    return None


def interaction_problem(interaction: discord.Interaction) -> str | None:
    """Why an interaction cannot be handled as a person's request, or None: no user (a guild
    interaction without ``member``), or data or a name that must not reach the core."""
    user: Any = interaction.user  # discord.py leaves MISSING when a guild interaction has no member
    if not isinstance(user, discord.User | discord.Member):
        return "an interaction without a user"
    if interaction.application_id != interaction.client.application_id:
        return "an interaction for another application"  # its follow-ups would go nowhere
    name: Any = user.display_name  # whatever type the payload carried
    if not isinstance(name, str) or not storable(name):
        return "a display name that cannot be stored"  # it is kept on the actions people take
    return data_problem(interaction.data)


def clicked_message_problem(message: Any) -> str | None:
    """Why discord.py could not rebuild a clicked message's view, or None. It does so in a task of
    its own (the DynamicItem dispatch), where an error is a traceback; convene's messages carry
    rows of buttons only, so anything else in one is refused first. A check of the raw payload:
    rebuilding the view here would cost ~90 µs of every vote click."""
    if not isinstance(message, dict):
        return "a clicked message that is not an object"
    flags = message.get("flags", 0)
    if not isinstance(flags, int) or flags & COMPONENTS_V2:
        return "a clicked message with flags convene never sets"
    rows = message.get("components")  # discord.py sets Message.components only when the key is there
    if not isinstance(rows, list) or len(rows) > MAX_ROWS:
        return "a clicked message whose components are not rows"
    for row in rows:
        if not isinstance(row, dict) or row.get("type") != ACTION_ROW:
            return "a clicked message with a component that is not a row"
        buttons = row.get("components", [])
        if not isinstance(buttons, list) or len(buttons) > MAX_ROW_BUTTONS:
            return "a clicked message with a row that is not of buttons"
        for b in buttons:  # on every vote click: plain checks, no generators
            if not isinstance(b, dict) or b.get("type") != BUTTON or not isinstance(b.get("style"), int):
                return "a clicked message with a component that is not a button"
            get = b.get
            if not (
                isinstance(get("custom_id", ""), str)
                and isinstance(get("url", ""), str)
                and isinstance(get("label", ""), str)
                and isinstance(get("disabled", False), bool)
                and isinstance(get("id", 0), int)
                and isinstance(get("emoji") or {}, dict)
            ):
                return "a clicked message with a button field of the wrong kind"
            if "custom_id" in b and ("url" in b or "sku_id" in b):
                return "a clicked message with a button both linked and clickable"
    return None
