"""Fixtures for Slack adapter tests: a started fake Slack on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.platform_fakes.slack import FakeSlackWebAPI


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlackWebAPI]:
    """A started `FakeSlackWebAPI` (Web API + Socket Mode + response_url) on 127.0.0.1:<ephemeral>."""
    async with FakeSlackWebAPI() as fake:
        yield fake
