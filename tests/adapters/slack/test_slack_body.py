"""A click's body is read once, by our fast decoder, to exactly what bolt's parser would read."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from hypothesis import given, settings
from hypothesis import strategies as st
from slack_bolt.request.internals import parse_body

from adapters.slack.app import interactive_payload
from tests.hostile_text import FRAGMENTS

FORM = "application/x-www-form-urlencoded"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def bolt_reads(body: bytes) -> Any:
    return parse_body(body.decode("utf-8"), FORM)


@settings(deadline=None)
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_a_click_payload_reads_as_bolt_reads_it(payload: dict[str, Any]) -> None:
    for dumped in (json.dumps(payload), json.dumps(payload, ensure_ascii=False)):
        body = urlencode({"payload": dumped}).encode()
        assert interactive_payload(body) == bolt_reads(body) == payload


def test_hostile_text_and_hand_written_escapes_read_as_bolt_reads_them() -> None:
    for text in [*FRAGMENTS, "a\\b", "\\x41", "%41", "100%", "\\\\", "+", "é ü 👍"]:
        payload = {"type": "block_actions", "text": text, "actions": [{"action_id": "cv:x"}]}
        bodies = [urlencode({"payload": json.dumps(payload)}).encode()]
        raw = json.dumps(payload, ensure_ascii=False)
        if not any(0xD800 <= ord(ch) <= 0xDFFF for ch in raw):  # UTF-8 can carry it
            bodies.append(("payload=" + quote(raw, safe="{}:,\\ ")).encode())
        for body in bodies:
            assert interactive_payload(body) == bolt_reads(body) == payload


@given(st.binary(max_size=60))
def test_anything_else_is_left_to_bolt_or_read_the_same(tail: bytes) -> None:
    """Odd bodies: either bolt's parser reads them (None here), or both read the same object."""
    body = b"payload=" + tail
    try:
        expected = bolt_reads(body)
    except Exception:
        expected = None
    got = interactive_payload(body)
    if got is not None:
        assert got == expected


def test_other_bodies_are_left_to_bolt() -> None:
    assert interactive_payload(b"command=%2Fconvene&text=help") is None  # a slash command
    assert interactive_payload(b'{"type": "event_callback"}') is None  # the Events API's JSON
    assert interactive_payload(b"payload=%7B%7D&payload=%7B%22a%22%3A1%7D") is None  # two fields
    assert interactive_payload(b"payload=%5B1%5D") is None  # not an object
    assert interactive_payload(b"payload=%7B%22a%22%3A%2") is None  # a cut escape
