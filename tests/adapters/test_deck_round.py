"""A round on both platforms where every voter votes on every idea through the deck, through the real
adapters: the published tallies equal the votes cast, the channels stay quiet while people vote.
(``benchmarks/deck_round.py`` plays the same at 200 ideas and 50 voters.)"""

from __future__ import annotations

from pathlib import Path

from tests.adapters.deck_round import play


async def test_every_voter_votes_on_every_idea_and_the_tallies_are_exact(tmp_path: Path) -> None:
    fig = await play(tmp_path, ideas=24, voters=6, concurrency=6)
    assert fig.clicks == 24 * 6
    assert fig.done == {"slack": 3, "discord": 3}  # each was told they had voted on every idea
    assert sum(fig.cast.values()) == fig.clicks
    assert fig.published["slack"] == fig.cast
    assert fig.published["discord"] == fig.cast
    for channel in ("slack", "discord"):
        assert fig.public_during_voting[channel] <= fig.limit  # 2 + ceil(24 / 20) = 4
        assert fig.public_while_clicking[channel] == 0  # no public post or edit per vote
