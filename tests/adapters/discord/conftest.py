"""Fixtures for Discord adapter tests: a started fake Discord with discord.py pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import discord
import pytest

from tests.platform_fakes.discord import FakeDiscord
from tests.platform_fakes.discord_client import running_client


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    """A started :class:`FakeDiscord` with ``Route.BASE``/``DEFAULT_GATEWAY`` patched to it.

    Teardown fails if the bot called a REST route the fake does not implement (set
    ``fake.unhandled.clear()`` in a test that does so on purpose)."""
    async with FakeDiscord() as fake:
        with fake.patch_discord():
            yield fake
    assert not fake.unhandled, (
        f"routes the fake does not implement: {[(c.method, c.path) for c in fake.unhandled]}"
    )


@pytest.fixture
def run_client(
    fake_discord: FakeDiscord,
) -> Callable[..., AbstractAsyncContextManager[Any]]:
    """``async with run_client(bot) as bot:`` starts ``bot`` against the fake, waits until
    ready, and closes it cleanly (no dangling discord.py tasks) on exit."""

    def run(client: discord.Client, **kw: Any) -> AbstractAsyncContextManager[Any]:
        return running_client(fake_discord, client, **kw)

    return run
