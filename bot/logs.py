"""Logging that never pairs a person with what they said, at any level.

Our own loggers (``convene.*``) log codes, kinds and counts, never a payload or a user id. The
libraries underneath do not keep to that: at DEBUG slack_sdk logs every Web API call with its body,
slack_bolt (and bolt's framework logger, ``convene.slack.bolt``) logs payloads, and at WARNING an
unhandled request with its whole body; discord.py logs gateway frames; aiosqlite logs each statement
with its parameters, SQLAlchemy its SQL and rows. So, wherever logging is configured (``convene run``
or anything that builds the app):

* those loggers are pinned at WARNING, so the chatty records are never made;
* a log record factory rewrites whatever they still log when the record is made, before any
  handler, filter or level set later can see it: below WARNING the message is withheld; at WARNING
  and above it is kept without its quoted values, ``{...}``/``[...]`` parts, user-id-shaped tokens
  and traceback (the exception's type is kept).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import traceback
from typing import Any, Literal

LIBRARIES = (
    "slack_sdk",
    "slack_bolt",
    "convene.slack.bolt",
    "discord",
    "aiosqlite",
    "asyncpg",
    "sqlalchemy",
    "aiohttp",
    "websockets",
)
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
WITHHELD = "(a library's debug record, withheld: it may carry a payload)"
MAX_KEPT = 300

_QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"|b'[^'\n]*'")
_BRACKETED = re.compile(r"\{[^{}]*\}|\[[^\[\]]*\]|<[^<>]*>")
# Slack user/team/channel ids, Discord snowflakes, emails: whatever could name a person.
_ID_SHAPED = re.compile(r"\b[UWTCDGB](?=[A-Z0-9]*\d)[A-Z0-9]{6,}\b|\b\d{15,}\b|\S+@\S+")

_installed = False


def is_library(name: str) -> bool:
    return any(name == lib or name.startswith(lib + ".") for lib in LIBRARIES)


def redact(text: str) -> str:
    """What a library's warning or error may keep: its wording, not the values it quotes."""
    text = _QUOTED.sub("…", text)
    previous = None
    while previous != text:  # innermost brackets first, so nested payloads go whole
        previous, text = text, _BRACKETED.sub("…", text)
    text = _ID_SHAPED.sub("…", text)
    return " ".join(text.split())[:MAX_KEPT]


def _message(msg: Any, args: Any) -> str:
    try:
        return str(msg) % args if args else str(msg)
    except (TypeError, ValueError, KeyError):
        return str(msg)


def install() -> None:
    """Pin the libraries' loggers and install the redacting record factory (idempotent)."""
    global _installed
    for name in LIBRARIES:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)
    if _installed:
        return
    make = logging.getLogRecordFactory()

    def factory(
        name: str,
        level: int,
        fn: str,
        lno: int,
        msg: Any,
        args: Any,
        exc_info: Any,
        func: str | None = None,
        sinfo: str | None = None,
        **kwargs: Any,
    ) -> logging.LogRecord:
        if is_library(name):
            if level < logging.WARNING:
                msg, args, exc_info = WITHHELD, (), None
            else:
                kept = redact(_message(msg, args))
                if isinstance(exc_info, tuple) and exc_info[0] is not None:
                    kept = f"{kept} [{exc_info[0].__name__}]"
                msg, args, exc_info = kept, (), None
        return make(name, level, fn, lno, msg, args, exc_info, func, sinfo, **kwargs)

    logging.setLogRecordFactory(factory)
    _installed = True


class JsonFormatter(logging.Formatter):
    """One JSON object a line, with fixed keys only: ``time``, ``level``, ``logger``, ``message``
    and, for an exception, ``exc_type`` and ``stack`` (its frames: file, line, function, never its
    message, which may quote a row). Nothing a caller passes in ``extra`` is written, so no field can
    carry a payload next to the ids the message names (which are none: see the rules above)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc_type"] = record.exc_info[0].__name__
            entry["stack"] = [
                f"{frame.filename}:{frame.lineno} in {frame.name}"
                for frame in traceback.extract_tb(record.exc_info[2])
            ]
        return json.dumps(entry, ensure_ascii=False)


def formatter(kind: Literal["text", "json"] = "text") -> logging.Formatter:
    return JsonFormatter() if kind == "json" else logging.Formatter(FORMAT)


def configure(level: str, kind: Literal["text", "json"] = "text") -> None:
    """``convene run``'s logging: to stderr at ``level``, as text or JSON lines (``logging.format``),
    with the libraries held to the rule above."""
    install()
    logging.basicConfig(level=level, format=FORMAT)
    root = logging.getLogger()
    root.setLevel(level)
    for handler in root.handlers:
        handler.setFormatter(formatter(kind))
