"""Ranking at vote close, behind one function: the consensus engine (bot.consensus) does the maths."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

VALUES = {"agree": 1, "disagree": -1, "pass": 0}


@dataclass(frozen=True, slots=True)
class BallotFact:
    voter: str
    idea: int
    choice: str  # agree | disagree | pass


@dataclass(frozen=True, slots=True)
class IdeaResult:
    idea: int
    agree: int
    disagree: int
    passes: int
    score: float  # group-informed consensus, 0..1
    rank: int
    common_ground: bool = False
    divisive: bool = False
    # Agreement per declared sector, only where this idea has at least k voters from the sector and
    # no fewer than k (or none) outside the shown sectors (bot.consensus.engine.sector_cells).
    sectors: tuple[tuple[str, float], ...] = ()


def rank_ideas(
    ideas: Iterable[int],
    ballots: Iterable[BallotFact],
    voter_sector: Mapping[str, str | None],
    *,
    sector_min_voters: int,
    threshold: float = 0.6,
) -> list[IdeaResult]:
    """Common-ground ideas first (agreement ≥ threshold in every opinion group and in every sector
    whose figure for the idea is shown), then by group-informed consensus; with too few voters for
    opinion groups the engine falls back to the plain agreement ranking. Deterministic."""
    # Imported here: numpy and scipy cost ~40 MiB, needed only when a vote closes.
    import numpy as np

    from bot.consensus import ConsensusConfig, VoteTable, analyze

    numbers = sorted(ideas)
    column = {n: i for i, n in enumerate(numbers)}
    facts = [b for b in ballots if b.idea in column and b.choice in VALUES]
    voters = sorted({b.voter for b in facts})
    row = {v: i for i, v in enumerate(voters)}
    table = VoteTable(
        n_participants=len(voters),
        n_ideas=len(numbers),
        participant=np.array([row[b.voter] for b in facts], dtype=np.int32),
        idea=np.array([column[b.idea] for b in facts], dtype=np.int32),
        value=np.array([VALUES[b.choice] for b in facts], dtype=np.int8),
    )
    config = ConsensusConfig(sector_min_voters=sector_min_voters, common_ground_threshold=threshold)
    result = analyze(table, sectors=[voter_sector.get(v) for v in voters], config=config, seed=0)
    divisive = set(result.divisive)
    return [
        IdeaResult(
            idea=numbers[i],
            agree=int(result.agree[i]),
            disagree=int(result.disagree[i]),
            passes=int(result.passes[i]),
            score=round(float(result.gac[i]), 6),
            rank=rank,
            common_ground=bool(result.common_ground[i]),
            divisive=i in divisive,
            sectors=tuple(
                (name, round(float(share[i]), 4))
                for name, share in sorted(result.sector_agreement.items())
                if share[i] == share[i]  # NaN: this idea's cell for that sector is not shown
            ),
        )
        for rank, i in enumerate(result.ranking, start=1)
    ]
