"""Consensus engine: Polis-style opinion groups and cross-sector common ground (pure numpy/scipy)."""

from bot.consensus.engine import analyze, ratings_medians
from bot.consensus.model import Analysis, ConsensusConfig, ConsensusInputError, RejectedIdeas, VoteTable

__all__ = [
    "Analysis",
    "ConsensusConfig",
    "ConsensusInputError",
    "RejectedIdeas",
    "VoteTable",
    "analyze",
    "ratings_medians",
]
