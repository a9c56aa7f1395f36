# ruff: noqa: E402  (imports follow the sys.path line so the script runs from anywhere)
"""A round of 200 ideas and 50 voters on both platforms, every voter voting on every idea through the
private deck (25 on Slack through signed requests and slack-bolt, 25 on Discord through discord.py
and the fake gateway; both fakes in this process). Prints whether the published tallies equal the
votes cast, the public messages per channel while voting (goal: at most 2 + ceil(ideas / 20)), the
public posts or edits made while people clicked (goal: none), and click-to-card times per platform.

    .venv/bin/python benchmarks/deck_round.py [--ideas 200] [--voters 50] [--concurrency 10]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1])
sys.path.insert(0, ROOT)

from tests.adapters.deck_round import play


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


async def main(ideas: int, voters: int, concurrency: int) -> int:
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        fig = await play(Path(tmp), ideas=ideas, voters=voters, concurrency=concurrency)
    ok = True
    print(f"{ideas} ideas, {voters} voters, Slack and Discord: {fig.clicks} deck clicks, {fig.seconds:.0f} s")
    expected = ideas * voters
    print(f"  every voter voted on every idea: {fig.clicks == expected} ({fig.clicks} of {expected} votes)")
    print(f"  told they were done: {fig.done}")
    for platform, tally in fig.published.items():
        same = tally == fig.cast
        ok &= same
        print(f"  published tallies on {platform} equal the votes cast: {same} ({sum(tally.values())} votes)")
    for channel, n in fig.public_during_voting.items():
        ok &= n <= fig.limit
        print(f"  public messages in the {channel} channel while voting: {n} (goal <= {fig.limit})")
    for channel, n in fig.public_while_clicking.items():
        ok &= n == 0
        print(f"  public posts or edits in the {channel} channel while people clicked: {n} (goal 0)")
    for platform, values in fig.click_to_card.items():
        ms = [v * 1000 for v in values]
        print(
            f"  {platform} click -> next card: median {statistics.median(ms):.1f} ms, "
            f"p99 {pct(ms, 99):.1f} ms (n={len(ms)}, {concurrency} voters at a time, fakes in-process)"
        )
    ok &= fig.clicks == expected
    print("all figures met" if ok else "A FIGURE WAS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ideas", type=int, default=200)
    parser.add_argument("--voters", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.ideas, args.voters, args.concurrency)))
