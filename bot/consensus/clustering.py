"""Polis-style opinion groups: sparse PCA, base clusters, then k groups chosen by silhouette."""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import ArpackError, svds
from scipy.spatial import cKDTree

from bot.consensus.model import FloatArray, IntArray

_KMEANS_MAX_ITER = 100
_BASE_RESTARTS = 3


def project(votes: sparse.csr_matrix, seed: int, *, rejected: int = 0) -> FloatArray:
    """2-D Polis projection of the rows of `votes` (values -1/0/+1 stored, missing = not stored).

    `rejected` counts moderated-out ideas that Polis keeps in its matrix as a pass by everyone:
    they add no variance but enter the sparsity scaling.

    Mean imputation followed by centring turns every missing cell into exactly 0, so the centred
    matrix keeps the sparsity pattern of the votes: no dense participants × ideas copy is needed.
    """
    n_rows, n_cols = votes.shape
    sums = np.bincount(votes.indices, weights=votes.data, minlength=n_cols)
    counts = np.bincount(votes.indices, minlength=n_cols)
    means = np.divide(sums, counts, out=np.zeros(n_cols), where=counts > 0)
    centred = sparse.csr_matrix(
        (votes.data - means[votes.indices], votes.indices, votes.indptr), shape=votes.shape
    )
    if not np.any(centred.data):
        return np.zeros((n_rows, 2))  # everyone voted alike: no axis of disagreement
    if min(n_rows, n_cols) <= 3:
        # ARPACK needs k < min(shape); such matrices are tiny, so dense SVD is exact and cheap.
        _, _, vt = np.linalg.svd(centred.toarray(), full_matrices=False)
        components = vt[:2]
    else:
        v0 = np.random.default_rng(seed).uniform(-1.0, 1.0, min(n_rows, n_cols))
        try:
            _, s, vt = svds(centred, k=2, v0=v0)  # v0 fixes the start, so runs repeat exactly
            components = vt[np.argsort(-s)]
        except ArpackError:
            # Rank-deficient corner cases: the ideas × ideas Gram matrix is small enough to solve.
            _, vecs = np.linalg.eigh((centred.T @ centred).toarray())
            components = vecs[:, ::-1][:, :2].T.copy()
    if components.shape[0] < 2:
        components = np.vstack([components, np.zeros((2 - components.shape[0], n_cols))])
    # Fix the sign of each axis so runs agree whatever the solver returns.
    pivots = np.argmax(np.abs(components), axis=1)
    components *= np.where(components[np.arange(2), pivots] < 0, -1.0, 1.0)[:, None]
    coords = np.asarray(centred @ components.T)
    # Polis scales sparse voters outwards so they do not bunch up in the centre.
    n_votes = np.diff(votes.indptr) + rejected
    scale = np.sqrt((n_cols + rejected) / np.maximum(n_votes, 1))
    return np.asarray(coords * scale[:, None], dtype=np.float64)


def _plusplus(points: FloatArray, weights: FloatArray, k: int, rng: np.random.Generator) -> FloatArray:
    """Weighted k-means++ seeding."""
    centres = np.empty((k, points.shape[1]))
    centres[0] = points[rng.choice(len(points), p=weights / weights.sum())]
    closest = np.sum((points - centres[0]) ** 2, axis=1)
    for j in range(1, k):
        mass = closest * weights
        total = mass.sum()
        idx = rng.choice(len(points), p=mass / total) if total > 0 else int(rng.integers(len(points)))
        centres[j] = points[idx]
        closest = np.minimum(closest, np.sum((points - centres[j]) ** 2, axis=1))
    return centres


def kmeans(
    points: FloatArray,
    weights: FloatArray,
    k: int,
    rng: np.random.Generator,
    init: FloatArray | None = None,
) -> tuple[IntArray, FloatArray, float]:
    """Weighted Lloyd k-means in 2-D; returns (labels, centres, inertia). Every cluster is non-empty."""
    centres = _plusplus(points, weights, k, rng) if init is None else init.copy()
    labels = np.full(len(points), -1)
    for _ in range(_KMEANS_MAX_ITER):
        dist, new_labels = cKDTree(centres).query(points)
        mass = np.bincount(new_labels, weights=weights, minlength=k)
        empty = np.flatnonzero(mass == 0)
        if empty.size:
            # Re-seed empty clusters at the worst-served points, heaviest error first.
            worst = np.argsort(-(dist**2) * weights, kind="stable")[: empty.size]
            new_labels[worst] = empty
            mass = np.bincount(new_labels, weights=weights, minlength=k)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
        for dim in range(points.shape[1]):
            centres[:, dim] = np.bincount(labels, weights=weights * points[:, dim], minlength=k) / mass
    inertia = float(np.sum(weights * np.sum((points - centres[labels]) ** 2, axis=1)))
    return labels, centres, inertia


def weighted_silhouette(points: FloatArray, weights: FloatArray, labels: IntArray) -> float:
    """Silhouette of the participants, each standing at its base-cluster centre.

    A base cluster of weight w counts as w coincident participants, so its own cluster holds
    w - 1 others at distance 0.
    """
    k = int(labels.max()) + 1
    dist = np.sqrt(np.sum((points[:, None, :] - points[None, :, :]) ** 2, axis=2))
    onehot = np.zeros((len(points), k))
    onehot[np.arange(len(points)), labels] = 1.0
    mass = weights @ onehot
    to_cluster = (dist * weights[None, :]) @ onehot  # summed distance to each cluster's members
    own_mass = mass[labels] - 1.0
    own = np.divide(
        to_cluster[np.arange(len(points)), labels], own_mass, out=np.zeros(len(points)), where=own_mass > 0
    )
    other = np.where(onehot > 0, np.inf, to_cluster / mass[None, :]).min(axis=1)
    denom = np.maximum(own, other)
    score = np.divide(other - own, denom, out=np.zeros(len(points)), where=denom > 0)
    score[own_mass <= 0] = 0.0  # a lone participant's silhouette is 0 by convention
    return float(np.sum(score * weights) / weights.sum())


def opinion_groups(
    coords: FloatArray, *, base_clusters: int, max_groups: int, seed: int
) -> tuple[IntArray, int]:
    """Group participants (rows of `coords`); returns (labels, k) with k = 0 when no grouping exists.

    k is chosen by silhouette over ~100 weighted base clusters, which keeps the choice cheap at any
    scale. Every k-means over groups is seeded like Polis, with the first k distinct points in
    coordinate order: random or k-means++ seeding lands on other, equally good local optima and
    so disagrees with Polis's groups on real conversations. The final groups come from k-means
    over the participants themselves, so base-cluster borders do not leak into them.
    """
    rng = np.random.default_rng(seed)
    unique, inverse = np.unique(coords, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    counts = np.bincount(inverse).astype(np.float64)
    if len(unique) < 3:
        return np.full(len(coords), -1), 0
    if len(unique) <= base_clusters:
        base_centres, base_mass = unique, counts
    else:
        fits = [kmeans(unique, counts, base_clusters, rng) for _ in range(_BASE_RESTARTS)]
        labels, base_centres, _ = min(fits, key=lambda fit: fit[2])
        base_mass = np.bincount(labels, weights=counts, minlength=base_clusters).astype(np.float64)
    best: tuple[float, int] | None = None
    for k in range(2, min(max_groups, len(base_centres) - 1) + 1):
        order = np.lexsort((base_centres[:, 1], base_centres[:, 0]))  # np.unique's order
        labels, _, _ = kmeans(base_centres, base_mass, k, rng, init=base_centres[order[:k]])
        score = weighted_silhouette(base_centres, base_mass, labels)
        if best is None or score > best[0] + 1e-12:
            best = (score, k)
    if best is None:
        return np.full(len(coords), -1), 0
    k = best[1]
    unique_groups, _, _ = kmeans(unique, counts, k, rng, init=unique[:k])
    groups = unique_groups[inverse]
    # Number groups by size (largest first), ties by position, so labels are stable.
    sizes = np.bincount(groups, minlength=k)
    order = np.argsort(-sizes, kind="stable")
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    return rank[groups], k
