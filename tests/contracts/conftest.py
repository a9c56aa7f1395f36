"""The backends every contract runs over: one parametrised fixture per port (as aiogram's
tests/test_fsm/storage/test_storages.py does for its storages)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.contracts.chat_harness import HARNESSES, ChatHarness
from tests.contracts.key_backends import BACKENDS, KeyBackend, open_backend


@pytest.fixture(params=BACKENDS)
def key_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyBackend]:
    with open_backend(request.param, tmp_path) as backend:
        yield backend


@pytest.fixture(params=list(HARNESSES))
async def chat(request: pytest.FixtureRequest) -> AsyncIterator[ChatHarness]:
    async with HARNESSES[request.param]() as harness:
        yield harness
