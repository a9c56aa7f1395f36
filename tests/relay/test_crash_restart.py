"""benchmarks/crash_restart.py, small: `convene run` SIGKILLed during a round on both platforms and
restarted at once, two of the kills while people vote through the deck, loses no acknowledged vote and
shows no post twice on Discord. The timings (held posts, restart to answering) are the benchmark's to
print, not this test's to assert."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROUND_LIMIT = 150.0  # seconds; the round takes about 30 (a stalled run fails saying where it was)


def benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crash_restart", ROOT / "benchmarks" / "crash_restart.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
async def test_kills_during_a_round_lose_no_acknowledged_vote_and_repeat_no_discord_post(db_url: str) -> None:
    kills = 6  # after the release, the tally, the take and the close; two while people vote
    # The database made and dropped, and the process stopped, within a hard limit too.
    async with asyncio.timeout(ROUND_LIMIT + 60):
        figures, _ = await benchmark().measure(
            None if db_url.startswith("sqlite") else db_url,
            kills=kills,
            voters=8,
            ideas=4,
            seed=3,
            limit=ROUND_LIMIT,
        )
    assert figures.kills == kills
    assert figures.kills_while_voting >= 1
    # Clicks whose answer never came (the process was down) were pressed again from the same card.
    assert figures.clicks_again >= 1
    assert figures.votes_intended == figures.votes_acknowledged == figures.votes_stored == 32
    assert (figures.votes_lost, figures.votes_extra) == (0, 0)
    assert figures.discord_duplicates == 0
    assert figures.slack_duplicates <= kills  # at most the post in flight, per kill
    assert figures.order_breaks == 0
    assert figures.tracebacks == 0
