"""Hostile inputs through both platforms (see `tests/adapters/fuzzing.py` for what is sent and how it
is counted): no HTTP 5xx, no traceback, no crash, every bad signature a 401, and a private answer to
every input whose sender the platform lets us reach. A CI-sized share of the 10,000 that
``benchmarks/fuzz_faults.py`` runs (``CONVENE_FUZZ_INPUTS`` per platform, ``CONVENE_FUZZ_SEED``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.adapters.fuzzing import Tally, fuzz_discord, fuzz_slack

INPUTS = int(os.environ.get("CONVENE_FUZZ_INPUTS", "300"))
SEED = int(os.environ.get("CONVENE_FUZZ_SEED", "20261130"))


def assert_figures(t: Tally) -> None:
    summary = "\n".join(t.lines())
    assert t.inputs == INPUTS, summary
    assert t.http_5xx == 0, summary
    assert t.tracebacks == 0, (summary, t.traceback_lines)
    assert t.errors == 0, (summary, t.error_lines)
    assert t.crashes == 0, summary
    assert t.signature_401 == t.signature_refusals, summary
    assert t.answered == t.answerable, (summary, t.unanswered[:20])
    # Not vacuous: most inputs could be answered, and many were mutated beyond what a platform sends.
    assert t.answerable > INPUTS // 2, summary


@pytest.mark.slow
async def test_fuzzed_slack_requests(engine: AsyncEngine, tmp_path: Path) -> None:
    t = await fuzz_slack(INPUTS, SEED, tmp_path, engine=engine)
    assert_figures(t)
    assert t.signature_refusals > 0
    assert t.statuses[400] > INPUTS // 10  # refused for their shape
    assert t.statuses[200] > INPUTS // 10  # taken (and answered) as usual


@pytest.mark.slow
async def test_fuzzed_discord_frames(engine: AsyncEngine, tmp_path: Path) -> None:
    t = await fuzz_discord(INPUTS, SEED, tmp_path, engine=engine)
    assert_figures(t)
    assert t.kinds["interaction"] > 0  # INTERACTION_CREATE frames that are no object at all
    assert sum(n for k, n in t.kinds.items() if k.startswith("event ")) > 0  # other events, with junk
