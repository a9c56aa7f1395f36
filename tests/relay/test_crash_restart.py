"""benchmarks/crash_restart.py, small: `convene run` SIGKILLed during a round on both platforms and
restarted at once loses no acknowledged vote and shows no post twice on Discord. The timings (held
posts, restart to answering) are the benchmark's to print, not this test's to assert."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


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
    kills = 4
    figures, _ = await benchmark().measure(
        None if db_url.startswith("sqlite") else db_url, kills=kills, voters=6, ideas=4, seed=3
    )
    assert figures.kills == kills
    assert figures.votes_intended == figures.votes_acknowledged == figures.votes_stored == 24
    assert (figures.votes_lost, figures.votes_extra) == (0, 0)
    assert figures.discord_duplicates == 0
    assert figures.slack_duplicates <= kills  # at most the post in flight, per kill
    assert figures.order_breaks == 0
    assert figures.tracebacks == 0
