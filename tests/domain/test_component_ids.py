"""The ids buttons and forms carry (``cv:<round>:<verb>[:<arg>...]``): what encodes decodes back to the
same thing, and nothing else is taken for one of ours."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.ids import ComponentId

part = st.text(alphabet="0123456789abcdefXYZ_.-", min_size=1, max_size=12)


@given(part, part, st.lists(part, max_size=4))
def test_an_encoded_id_decodes_to_what_was_encoded(round_id: str, verb: str, args: list[str]) -> None:
    cid = ComponentId(round_id, verb, tuple(args))
    assert ComponentId.decode(cid.encode()) == cid


@pytest.mark.parametrize(
    "parts",
    [
        ("r1", "v", ("a:b",)),  # would read back as two arguments
        ("r1", "v", ("",)),
        ("r1", "v\n", ()),
        ("r 1", "v", ()),
        ("r1", "v", ("x" * 41,)),
        ("r1", "v", ("x" * 40, "y" * 40, "z" * 40)),  # over 100 characters
    ],
)
def test_a_part_that_cannot_be_read_back_is_refused(parts: tuple[str, str, tuple[str, ...]]) -> None:
    with pytest.raises(ValueError, match="component id"):
        ComponentId(*parts).encode()


@pytest.mark.parametrize(
    "value",
    [
        "cv:r1:v\n",
        "cv:r1",
        "xx:r1:v",
        "cv:r1::a",
        "cv:r1:v:a b",
        "cv:r1:v:" + "x" * 41,
        "cv:" + "a:" * 50 + "a",
    ],
)
def test_anything_else_is_not_ours(value: str) -> None:
    assert ComponentId.decode(value) is None
