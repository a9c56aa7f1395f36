"""Consensus engine benchmark: bowling-green against red-dwarf, and a synthetic 10-million-vote run.

Run from the repo root: `.venv/bin/python benchmarks/consensus.py`. Prints figures; asserts nothing.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.consensus import VoteTable, analyze
from bot.consensus.polis import load_polis_export

DATA = Path(
    os.environ.get("CONVENE_POLIS_DATA")
    or Path(__file__).resolve().parents[1].parent / "shared" / "data" / "polis"
)


def measure(fn: Callable[[], Any], repeats: int = 3) -> tuple[float, float]:
    """Best wall time over `repeats` runs (s) and tracemalloc peak of one run (MiB)."""
    fn()  # warm up imports and caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return min(times), peak / 2**20


def bowling_green() -> None:
    from reddwarf.implementations.polis import run_pipeline

    folder = DATA / "american-assembly.bowling-green"
    load_s, _ = measure(lambda: load_polis_export(folder), repeats=3)
    conv = load_polis_export(folder)
    t = conv.table
    votes = [
        {"participant_id": int(conv.participant_ids[p]), "statement_id": conv.statement_ids[i], "vote": v}
        for p, i, v in zip(t.participant.tolist(), t.idea.tolist(), t.value.tolist(), strict=True)
    ]
    ours_s, ours_mb = measure(lambda: analyze(t, rejected=conv.rejected))
    theirs_s, theirs_mb = measure(lambda: run_pipeline(votes=votes, random_state=0))
    print(f"bowling-green: {t.n_participants} participants x {t.n_ideas} ideas, {len(t.value)} votes")
    print(f"  load_polis_export     {load_s * 1000:8.1f} ms")
    print(f"  analyze               {ours_s * 1000:8.1f} ms   peak {ours_mb:7.1f} MiB (tracemalloc)")
    print(f"  red-dwarf run_pipeline{theirs_s * 1000:8.1f} ms   peak {theirs_mb:7.1f} MiB (tracemalloc)")
    print(
        f"  speed-up {theirs_s / ours_s:.1f}x (goal >= 5x); "
        f"memory {ours_mb / theirs_mb:.2f} of red-dwarf's (goal <= 0.33)"
    )


def synthetic_table(
    n_participants: int = 100_000, n_ideas: int = 1_000, per_person: int = 100, seed: int = 0
) -> tuple[VoteTable, np.ndarray]:
    """Four opinion camps; each person votes on 100 distinct ideas (10 million votes in all)."""
    rng = np.random.default_rng(seed)
    camp = rng.integers(0, 4, n_participants)
    agree_p = rng.uniform(0.05, 0.95, (4, n_ideas))  # each camp's agreement rate per idea
    # Distinct ideas per person: j -> (a*j + b) mod n with a coprime to n is a bijection.
    units = np.array([a for a in range(1, n_ideas) if np.gcd(a, n_ideas) == 1])
    a = rng.choice(units, n_participants)[:, None]
    b = rng.integers(0, n_ideas, n_participants)[:, None]
    idea = ((a * np.arange(per_person)[None, :] + b) % n_ideas).astype(np.int32).ravel()
    person = np.repeat(np.arange(n_participants, dtype=np.int32), per_person)
    draw = rng.random(idea.size)
    p_agree = agree_p[np.repeat(camp, per_person), idea]
    value = np.where(draw < p_agree, 1, np.where(draw < p_agree + (1 - p_agree) * 0.8, -1, 0)).astype(np.int8)
    return VoteTable(n_participants, n_ideas, person, idea, value), camp


def synthetic() -> None:
    """Runs in its own process so ru_maxrss is this run's peak."""
    table, camp = synthetic_table()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    result = analyze(table)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    agree = np.mean(
        [np.bincount(camp[result.groups == g]).max() / (result.groups == g).sum() for g in range(result.k)]
    )
    print(f"synthetic: {table.n_participants} participants x {table.n_ideas} ideas, {len(table.value)} votes")
    print(f"  analyze {seconds:.2f} s (goal < 30 s); k = {result.k}; mean group purity vs camps {agree:.3f}")
    print(
        f"  peak RSS {peak:.0f} MiB for the whole process "
        f"({before:.0f} MiB after building the table; goal < 2048)"
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["synthetic"]:
        synthetic()
    else:
        if (DATA / "american-assembly.bowling-green").is_dir():
            bowling_green()
        else:
            print(f"Polis data not found at {DATA}; skipping bowling-green")
        subprocess.run([sys.executable, __file__, "synthetic"], check=True)
