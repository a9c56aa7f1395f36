"""analyze(): opinion groups, group-informed consensus, sectors, common ground and ranking."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import sparse

from bot.consensus.clustering import opinion_groups, project
from bot.consensus.model import (
    Analysis,
    BoolArray,
    ConsensusConfig,
    ConsensusInputError,
    FloatArray,
    IntArray,
    RejectedIdeas,
    VoteTable,
)

_DEFAULT_CONFIG = ConsensusConfig()
_MIN_TO_GROUP = 4  # fewer clusterable voters cannot form two groups with a meaningful silhouette


def _validate(table: VoteTable) -> None:
    n = len(table.value)
    if table.n_participants < 0 or table.n_ideas < 0:
        raise ConsensusInputError("n_participants and n_ideas must be non-negative")
    if len(table.participant) != n or len(table.idea) != n:
        raise ConsensusInputError(
            f"participant, idea and value must have the same length "
            f"(got {len(table.participant)}, {len(table.idea)}, {n})"
        )
    for name, arr in (("participant", table.participant), ("idea", table.idea), ("value", table.value)):
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise ConsensusInputError(f"{name} must be a 1-D integer array (got {arr.dtype}, {arr.ndim}-D)")
    if n == 0:
        return
    if table.participant.min() < 0 or table.participant.max() >= table.n_participants:
        raise ConsensusInputError(f"participant index outside 0..{table.n_participants - 1}")
    if table.idea.min() < 0 or table.idea.max() >= table.n_ideas:
        raise ConsensusInputError(f"idea index outside 0..{table.n_ideas - 1}")
    bad = (table.value < -1) | (table.value > 1)
    if bad.any():
        raise ConsensusInputError(
            f"vote values must be -1, 0 or +1; found {int(table.value[bad][0])} ({int(bad.sum())} such votes)"
        )


def _ballots(table: VoteTable) -> sparse.csr_matrix:
    """CSR participants × ideas holding value + 4, so a summed duplicate shows up as > 5."""
    shifted = table.value.astype(np.int32) + 4
    csr = sparse.csr_matrix(
        (shifted, (table.participant, table.idea)), shape=(table.n_participants, table.n_ideas)
    )
    if csr.nnz and int(csr.data.max()) > 5:
        raise ConsensusInputError("a participant voted more than once on the same idea")
    csr.data -= 4
    return csr


def _counts(keys: IntArray, value: npt.NDArray[np.int8], n_bins: int) -> tuple[IntArray, IntArray, IntArray]:
    """Agree, disagree and total vote counts per bin."""
    total = np.bincount(keys, minlength=n_bins)
    agree = np.bincount(keys[value == 1], minlength=n_bins)
    disagree = np.bincount(keys[value == -1], minlength=n_bins)
    return agree, disagree, total


def _ratio(num: npt.NDArray[np.int_], den: npt.NDArray[np.int_]) -> FloatArray:
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _smoothed_product(agree: IntArray, total: IntArray) -> FloatArray:
    """Product over rows of (A + 1) / (S + 2): Polis's group-informed consensus."""
    return np.asarray(np.prod((agree + 1.0) / (total + 2.0), axis=0), dtype=np.float64)


def _two_prop_z(succ_in: FloatArray, succ_out: FloatArray, n_in: FloatArray, n_out: FloatArray) -> FloatArray:
    """Polis's two-proportion z-test with +1 smoothing (stats.clj)."""
    s1, s2, n1, n2 = succ_in + 1, succ_out + 1, n_in + 1, n_out + 1
    p_hat = (s1 + s2) / (n1 + n2)
    denom = np.sqrt(p_hat * (1 - p_hat) * (1 / n1 + 1 / n2))
    z = np.divide(s1 / n1 - s2 / n2, denom, out=np.zeros_like(denom), where=denom > 0)
    return np.asarray(z, dtype=np.float64)


def _representative(
    agree: IntArray, disagree: IntArray, total: IntArray, config: ConsensusConfig
) -> dict[int, list[int]]:
    """Polis's repness selection (repness.clj), per group over (k, n_ideas) count arrays."""
    z = config.repness_z
    out: dict[int, list[int]] = {}
    all_a, all_d, all_n = agree.sum(axis=0), disagree.sum(axis=0), total.sum(axis=0)
    for g in range(agree.shape[0]):
        na, nd, ns = agree[g].astype(float), disagree[g].astype(float), total[g].astype(float)
        oa, od, on = all_a - na, all_d - nd, all_n - ns
        pa, pd = (na + 1) / (ns + 2), (nd + 1) / (ns + 2)
        ra, rd = pa / ((oa + 1) / (on + 2)), pd / ((od + 1) / (on + 2))
        pat = 2 * np.sqrt(ns + 1) * ((na + 1) / (ns + 1) - 0.5)
        pdt = 2 * np.sqrt(ns + 1) * ((nd + 1) / (ns + 1) - 0.5)
        rat, rdt = _two_prop_z(na, oa, ns, on), _two_prop_z(nd, od, ns, on)
        use_agree = rat > rdt
        metric = np.where(use_agree, ra * rat * pa * pat, rd * rdt * pd * pdt)
        significant = ((pat > z) & (rat > z)) | ((pdt > z) & (rdt > z))

        # The "best agree" statement heads the list so each group shows something it agrees on;
        # the criterion tightens once a candidate with ra > 1 is held, hence the sequential scan.
        best: int | None = None
        for c in np.flatnonzero(na + nd > 0).tolist():
            if best is None:
                take = pat[c] > z or (ra[c] > 1.0 and pa[c] > 0.5)
            elif ra[best] > 1.0:
                take = ra[c] * rat[c] * pa[c] * pat[c] > ra[best] * rat[best] * pa[best] * pat[best]
            else:
                take = pa[c] * pat[c] > pa[best] * pat[best]
            if take:
                best = c
        sufficient = np.flatnonzero(significant)
        if best is None and sufficient.size == 0 and ns.sum() > 0:
            best = int(np.argmax(np.maximum(rat, rdt)))
        ranked = sufficient[np.argsort(-metric[sufficient], kind="stable")].tolist()
        head = [] if best is None else [best]
        picked = (head + [c for c in ranked if c != best])[: config.max_representative]
        # Polis lists agree-representative statements before disagree ones (stable sort on direction).
        picked.sort(key=lambda c: not use_agree[c])
        out[g] = [int(c) for c in picked]
    return out


def _divisive(group_agreement: FloatArray, config: ConsensusConfig) -> list[int]:
    """Ideas whose agreement differs most between two opinion groups (max − min over groups).

    Only ideas with votes in every group qualify, and the gap must reach divisive_min_gap.
    """
    if group_agreement.shape[0] < 2:
        return []
    with np.errstate(invalid="ignore"):
        gap = np.max(group_agreement, axis=0) - np.min(group_agreement, axis=0)
    ok = np.flatnonzero(np.isfinite(gap) & (gap >= config.divisive_min_gap))
    order = ok[np.lexsort((ok, -gap[ok]))]
    return [int(c) for c in order[: config.max_divisive]]


def _ranking(common: BoolArray, gac: FloatArray, agreement: FloatArray) -> list[int]:
    """Common ground first, then gac, then overall agreement (no votes last), then idea index."""
    idx = np.arange(len(gac))
    agreement_key = np.where(np.isnan(agreement), -1.0, agreement)
    return [int(c) for c in np.lexsort((idx, -agreement_key, -gac, ~common))]


def sector_cells(voters: IntArray, idea_voters: IntArray, k: int) -> BoolArray:
    """Which (sector, idea) figures may be shown: shape (sectors, ideas).

    A cell is shown only when that idea's voters from that sector number at least ``k``. And since
    an idea's overall counts are published too, the voters left outside the shown cells (smaller
    sectors and the undeclared) must number 0 or at least ``k``; otherwise the overall count minus
    the shown figures would reveal a group smaller than ``k``, so the smallest shown cell is hidden
    as well, until that holds (complementary suppression).
    """
    shown = voters >= k
    while True:
        residual = idea_voters - np.where(shown, voters, 0).sum(axis=0)
        bad = np.flatnonzero(shown.any(axis=0) & (residual > 0) & (residual < k))
        if bad.size == 0:
            return np.asarray(shown, dtype=np.bool_)
        smallest = np.where(shown, voters, np.iinfo(np.int64).max).argmin(axis=0)
        shown[smallest[bad], bad] = False


def _sector_codes(sectors: Sequence[str | None], n: int) -> tuple[IntArray, list[str]]:
    if len(sectors) != n:
        raise ConsensusInputError(f"sectors has {len(sectors)} entries for {n} participants")
    names = sorted({s for s in sectors if s is not None})
    lookup = {name: i for i, name in enumerate(names)}
    return np.array([-1 if s is None else lookup[s] for s in sectors], dtype=np.int64), names


def analyze(
    table: VoteTable,
    *,
    sectors: Sequence[str | None] | None = None,
    config: ConsensusConfig = _DEFAULT_CONFIG,
    seed: int = 0,
    rejected: RejectedIdeas | None = None,
) -> Analysis:
    """Analyze a ballot table; deterministic for a given seed.

    All voters inform the idea means and PCA axes (as in Polis); participants with at least
    min(min_votes_to_cluster, ideas) votes are grouped. `rejected` reproduces Polis's handling of
    moderated-out ideas (see RejectedIdeas) when comparing with Polis.

    Raises ConsensusInputError for malformed input. Input too small to group (fewer than 2 ideas,
    too few voters) is not an error: the result ranks by plain agreement and `notes` says why.
    """
    _validate(table)
    n_p, n_i = table.n_participants, table.n_ideas
    sector_of, sector_names = (
        _sector_codes(sectors, n_p) if sectors is not None else (np.full(n_p, -1, dtype=np.int64), [])
    )
    ballots = _ballots(table)
    idea_of, value = ballots.indices.astype(np.int64), ballots.data.astype(np.int8)
    voter_of = np.repeat(np.arange(n_p), np.diff(ballots.indptr))
    n_votes = np.diff(ballots.indptr)
    agree, disagree, total = _counts(idea_of, value, n_i)
    agreement = _ratio(agree, total)
    notes: list[str] = []

    groups = np.full(n_p, -1, dtype=np.int32)
    k = 0
    projection = np.full((n_p, 2), np.nan)
    n_rejected, rejected_votes = (0, 0) if rejected is None else (rejected.n_ideas, rejected.votes)
    if rejected is not None and len(rejected.votes) != n_p:
        raise ConsensusInputError(f"rejected.votes has {len(rejected.votes)} entries for {n_p} participants")
    threshold = min(config.min_votes_to_cluster, n_i + n_rejected)
    clusterable = np.flatnonzero(n_votes + rejected_votes >= threshold)
    if table.value.size == 0:
        notes.append("empty")
    elif n_i < 2:
        notes.append("too_few_ideas")
    elif clusterable.size < _MIN_TO_GROUP:
        notes.append("too_few_voters")
    else:
        coords = project(ballots.astype(np.float64), seed, rejected=n_rejected)[clusterable]
        labels, k = opinion_groups(
            coords, base_clusters=config.base_clusters, max_groups=config.max_groups, seed=seed
        )
        if k == 0:
            notes.append("no_opinion_groups")
        else:
            groups[clusterable] = labels
            projection[clusterable] = coords

    if k > 0:
        grouped = groups[voter_of] >= 0
        keys = groups[voter_of][grouped].astype(np.int64) * n_i + idea_of[grouped]
        g_agree, g_disagree, g_total = (c.reshape(k, n_i) for c in _counts(keys, value[grouped], k * n_i))
        gac = _smoothed_product(g_agree, g_total)
        group_agreement = _ratio(g_agree, g_total)
        representative = _representative(g_agree, g_disagree, g_total, config)
    else:
        # Without groups everyone is one group: gac degrades to smoothed overall agreement.
        gac = _smoothed_product(agree[None, :], total[None, :])
        group_agreement = np.empty((0, n_i))
        representative = {}

    sector_gac: FloatArray | None = None
    sector_agreement: dict[str, FloatArray] = {}
    sector_shown = np.zeros((len(sector_names), n_i), dtype=np.bool_)
    if sector_names:
        s_of_vote = sector_of[voter_of]
        keep = s_of_vote >= 0
        keys = s_of_vote[keep] * n_i + idea_of[keep]
        s_agree, _, s_total = (
            c.reshape(len(sector_names), n_i) for c in _counts(keys, value[keep], len(sector_names) * n_i)
        )
        sector_shown = sector_cells(s_total, total, config.sector_min_voters)
        if not sector_shown[s_total.sum(axis=1) > 0].all():
            notes.append("sectors_below_k_hidden")
        shown = np.flatnonzero(sector_shown.any(axis=1))
        if shown.size:
            # A hidden cell counts as neutral (1) in the product, as it does for common ground.
            ratios = np.where(sector_shown, (s_agree + 1.0) / (s_total + 2.0), 1.0)
            sector_gac = np.asarray(np.prod(ratios[shown], axis=0), dtype=np.float64)
            sector_agreement = {
                sector_names[s]: np.where(sector_shown[s], _ratio(s_agree[s], s_total[s]), np.nan)
                for s in shown.tolist()
            }

    # Common ground needs every opinion group (or, without groups, everyone) and every sector whose
    # figure is shown for the idea to reach the threshold. NaN (a group with no votes there) compares
    # False, so it fails; a sector cell that is not shown does not count either way.
    bars = list(group_agreement) if k > 0 else [agreement]
    with np.errstate(invalid="ignore"):
        common = np.logical_and.reduce([b >= config.common_ground_threshold for b in bars])
        for share in sector_agreement.values():
            common &= np.isnan(share) | (share >= config.common_ground_threshold)

    return Analysis(
        groups=groups,
        k=k,
        projection=projection,
        agree=agree,
        disagree=disagree,
        passes=total - agree - disagree,
        agreement=agreement,
        gac=gac,
        group_agreement=group_agreement,
        sector_gac=sector_gac,
        sector_agreement=sector_agreement,
        common_ground=np.asarray(common, dtype=np.bool_),
        representative=representative,
        divisive=_divisive(group_agreement, config),
        ranking=_ranking(common, gac, agreement),
        notes=notes,
    )


def ratings_medians(
    idea: npt.ArrayLike, urgency: npt.ArrayLike, impact: npt.ArrayLike, n_ideas: int
) -> tuple[FloatArray, FloatArray]:
    """Median urgency and impact (1–5) per idea; NaN for ideas without ratings."""
    ideas = np.asarray(idea)
    if ideas.ndim != 1 or (ideas.size and not np.issubdtype(ideas.dtype, np.integer)):
        raise ConsensusInputError("idea must be a 1-D integer array")
    if ideas.size and (ideas.min() < 0 or ideas.max() >= n_ideas):
        raise ConsensusInputError(f"idea index outside 0..{n_ideas - 1}")
    return _medians(ideas, np.asarray(urgency), n_ideas, "urgency"), _medians(
        ideas, np.asarray(impact), n_ideas, "impact"
    )


def _medians(ideas: IntArray, ratings: npt.NDArray[np.generic], n_ideas: int, name: str) -> FloatArray:
    if ratings.shape != ideas.shape:
        raise ConsensusInputError(f"{name} has {ratings.size} ratings for {ideas.size} ideas")
    values = ratings.astype(np.float64)
    if values.size and (not np.all(np.isfinite(values)) or values.min() < 1 or values.max() > 5):
        raise ConsensusInputError(f"{name} ratings must be between 1 and 5")
    order = np.lexsort((values, ideas))
    sorted_vals = values[order]
    counts = np.bincount(ideas, minlength=n_ideas)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    out = np.full(n_ideas, np.nan)
    has = counts > 0
    lo = starts[has] + (counts[has] - 1) // 2
    hi = starts[has] + counts[has] // 2
    out[has] = (sorted_vals[lo] + sorted_vals[hi]) / 2
    return out
