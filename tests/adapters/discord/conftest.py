"""Fixtures for Discord adapter tests: a started fake Discord with discord.py pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import discord
import pytest

from adapters.discord.client import ANSWERED_BY, ConveneClient
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


@pytest.fixture
def handled_by(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """``{custom_id: path}`` for every click: ``RoundButton``/``ContinueButton`` (the DynamicItem
    callbacks) or ``on_interaction`` (the fallback for ids no template took)."""
    seen: dict[str, str] = {}
    on_button, on_continue = ConveneClient.on_button, ConveneClient.on_continue

    async def spy_button(
        self: ConveneClient, interaction: discord.Interaction, action_id: str, verb: str | None = None
    ) -> None:
        seen[action_id] = interaction.extras[ANSWERED_BY]
        await on_button(self, interaction, action_id, verb)

    async def spy_continue(self: ConveneClient, interaction: discord.Interaction, custom_id: str) -> None:
        seen[custom_id] = interaction.extras[ANSWERED_BY]
        await on_continue(self, interaction, custom_id)

    monkeypatch.setattr(ConveneClient, "on_button", spy_button)
    monkeypatch.setattr(ConveneClient, "on_continue", spy_continue)
    return seen
