"""Input and output types of the consensus engine."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int_]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class ConsensusInputError(ValueError):
    """Malformed input: the message says what is wrong (and, for files, which file)."""


@dataclass(frozen=True)
class VoteTable:
    """Sparse COO ballot matrix: one entry per (participant, idea) vote.

    `value` is +1 agree, -1 disagree, 0 pass; each (participant, idea) pair appears at most once.
    """

    n_participants: int
    n_ideas: int
    participant: npt.NDArray[np.int32]
    idea: npt.NDArray[np.int32]
    value: npt.NDArray[np.int8]

    @classmethod
    def from_arrays(
        cls,
        n_participants: int,
        n_ideas: int,
        participant: npt.ArrayLike,
        idea: npt.ArrayLike,
        value: npt.ArrayLike,
    ) -> VoteTable:
        """Build a table from any integer sequences (converted to the stored dtypes)."""
        return cls(
            n_participants,
            n_ideas,
            np.asarray(participant, dtype=np.int32),
            np.asarray(idea, dtype=np.int32),
            np.asarray(value, dtype=np.int8),
        )


@dataclass(frozen=True)
class RejectedIdeas:
    """Moderated-out ideas, for Polis-compatible grouping (absent from the VoteTable itself).

    Polis keeps rejected statements in its matrix as a pass by everyone, so they still count
    towards the clustering threshold and the sparsity scaling of the projection.
    """

    n_ideas: int
    """Rejected ideas that received at least one vote."""
    votes: npt.NDArray[np.int_]
    """Votes each participant cast on them (length n_participants)."""


@dataclass(frozen=True)
class ConsensusConfig:
    sector_min_voters: int = 5
    """k: a sector's figure for an idea is shown only when that idea has at least k voters from the
    sector, and the idea's voters outside the shown sectors number 0 or at least k (see
    ``engine.sector_cells``)."""
    common_ground_threshold: float = 0.6
    min_votes_to_cluster: int = 7
    """A participant is clustered after min(this, n_ideas) votes."""
    base_clusters: int = 100
    max_groups: int = 5
    repness_z: float = 1.2816
    """One-sided z for 90 % confidence."""
    max_representative: int = 5
    divisive_min_gap: float = 0.3
    """An idea is divisive when its agreement differs by at least this much between two groups."""
    max_divisive: int = 5


@dataclass(frozen=True)
class Analysis:
    """Everything the bot shows about a conversation. Arrays are indexed by participant or idea."""

    groups: npt.NDArray[np.int32]
    """Opinion group per participant, -1 when not clustered."""
    k: int
    projection: FloatArray
    """2-D PCA coordinates per participant (NaN when not clustered)."""
    agree: IntArray
    disagree: IntArray
    passes: IntArray
    agreement: FloatArray
    """agrees / votes per idea over everyone (NaN without votes)."""
    gac: FloatArray
    """Group-informed consensus per idea: product over groups of (A_g + 1) / (S_g + 2)."""
    group_agreement: FloatArray
    """Shape (k, n_ideas): agrees / votes within each group (NaN without votes)."""
    sector_gac: FloatArray | None
    """Product over the shown sector cells of (A + 1) / (S + 2); None when no cell is shown."""
    sector_agreement: dict[str, FloatArray]
    """Per sector with a shown cell: agreement per idea, NaN where the idea's cell is not shown."""
    common_ground: BoolArray
    representative: dict[int, list[int]]
    divisive: list[int]
    ranking: list[int]
    notes: list[str] = field(default_factory=list)
