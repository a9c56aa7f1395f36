"""Ranking at vote close, behind one function so the consensus engine can replace it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


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
    score: float  # group-informed consensus over sectors, 0..1
    rank: int
    common_ground: bool | None = None


def rank_ideas(
    ideas: Iterable[int],
    ballots: Iterable[BallotFact],
    voter_sector: Mapping[str, str | None],
    *,
    sector_min_voters: int,
) -> list[IdeaResult]:
    """Group-informed consensus over declared sectors with at least k voters: the product over those
    sectors of (agrees + 1) / (votes + 2). With no such sector it is overall (agrees + 1) / (votes + 2).
    Ties are broken by overall agreement, then by idea number (deterministic)."""
    ideas = list(ideas)
    counts: dict[int, dict[str, int]] = {i: {"agree": 0, "disagree": 0, "pass": 0} for i in ideas}
    by_sector: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    sector_voters: dict[str, set[str]] = defaultdict(set)
    for b in ballots:
        if b.idea not in counts:
            continue
        counts[b.idea][b.choice] += 1
        sector = voter_sector.get(b.voter)
        if sector:
            sector_voters[sector].add(b.voter)
            cell = by_sector[sector][b.idea]
            cell[0] += b.choice == "agree"
            cell[1] += 1
    qualifying = sorted(s for s, voters in sector_voters.items() if len(voters) >= sector_min_voters)

    scored = []
    for idea in ideas:
        c = counts[idea]
        votes = c["agree"] + c["disagree"] + c["pass"]
        overall = (c["agree"] + 1) / (votes + 2)
        if qualifying:
            score = 1.0
            for sector in qualifying:
                agrees, n = by_sector[sector][idea]
                score *= (agrees + 1) / (n + 2)
        else:
            score = overall
        scored.append((idea, c, score, overall))
    scored.sort(key=lambda t: (-t[2], -t[3], t[0]))
    return [
        IdeaResult(idea, c["agree"], c["disagree"], c["pass"], round(score, 6), rank)
        for rank, (idea, c, score, _) in enumerate(scored, start=1)
    ]
