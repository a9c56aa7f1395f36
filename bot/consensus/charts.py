"""Optional PNG charts of ideas (matplotlib is an optional extra: without it, callers show text)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt


def render_charts(
    labels: Sequence[str],
    gac: npt.ArrayLike,
    urgency_median: npt.ArrayLike,
    impact_median: npt.ArrayLike,
    common_ground: npt.ArrayLike,
) -> bytes | None:
    """Urgency × impact map of the ideas beside a consensus bar chart; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display on a server
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    consensus = np.asarray(gac, dtype=float)
    urgency = np.asarray(urgency_median, dtype=float)
    impact = np.asarray(impact_median, dtype=float)
    common = np.asarray(common_ground, dtype=bool)
    colours = np.where(common, "tab:green", "tab:gray")

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, max(3.5, 0.35 * len(labels) + 1)))
    rated = np.isfinite(urgency) & np.isfinite(impact)
    left.scatter(urgency[rated], impact[rated], c=colours[rated], s=60)
    for i in np.flatnonzero(rated).tolist():
        point = (urgency[i], impact[i])
        left.annotate(labels[i], point, fontsize=7, xytext=(4, 4), textcoords="offset points")
    left.set(xlim=(0.5, 5.5), ylim=(0.5, 5.5), xlabel="urgency (median)", ylabel="impact (median)")
    left.set_title("Ideas by urgency and impact")

    order = np.argsort(consensus)
    right.barh([labels[i] for i in order], consensus[order], color=colours[order])
    right.set(xlim=(0, 1), xlabel="group-informed consensus")
    right.set_title("Consensus (green = common ground)")
    right.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()
