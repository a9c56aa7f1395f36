"""One canonical form for user text, whatever platform it came from.

Stored text equals displayed text, carries no invisible direction controls (Trojan Source), and
does not tell which platform it was typed on.
"""

from __future__ import annotations

import re
import unicodedata

# Bidi embedding/override/isolate controls, and invisible characters that hide content.
_BIDI = dict.fromkeys(
    map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"), None
)
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u2060\ufeff\u00ad"), None)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"[ \t]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def canonical_text(text: str) -> str:
    """NFC, no controls or bidi/invisible characters, tidy whitespace. Idempotent."""
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates become U+FFFD
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = text.translate(_BIDI).translate(_INVISIBLE)
    text = _CONTROL.sub("", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def one_line(text: str) -> str:
    return " ".join(canonical_text(text).split())


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
