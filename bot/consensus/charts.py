"""Optional PNG charts of ideas (matplotlib is an optional extra: without it, callers show text)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

TEXT_KEYS = ("map_title", "urgency_axis", "impact_axis", "consensus_title", "consensus_axis")


def render_round_chart(data: Mapping[str, Any], texts: Mapping[str, str]) -> bytes | None:
    """The chart posted at vote close, from the figures stored in the outbox message."""
    word = texts.get("idea", "")
    return render_charts(
        [f"{word} {x}".strip() for x in data["labels"]],
        [float(x) for x in data["gac"]],
        [np.nan if x is None else float(x) for x in data["urgency"]],
        [np.nan if x is None else float(x) for x in data["impact"]],
        [bool(x) for x in data["common_ground"]],
        texts=texts,
    )


def render_charts(
    labels: Sequence[str],
    gac: npt.ArrayLike,
    urgency_median: npt.ArrayLike,
    impact_median: npt.ArrayLike,
    common_ground: npt.ArrayLike,
    *,
    texts: Mapping[str, str] | None = None,
) -> bytes | None:
    """Urgency × impact map of the ideas beside a consensus bar chart; None without matplotlib.
    Axis titles come from ``texts`` (prompts/<lang>/labels.yaml, "chart")."""
    try:
        from matplotlib.figure import Figure  # the object API: no global pyplot state, safe in a thread
    except ImportError:
        return None
    t = {key: (texts or {}).get(key, "") for key in TEXT_KEYS}
    consensus = np.asarray(gac, dtype=float)
    urgency = np.asarray(urgency_median, dtype=float)
    impact = np.asarray(impact_median, dtype=float)
    common = np.asarray(common_ground, dtype=bool)
    colours = np.where(common, "tab:green", "tab:gray")

    fig = Figure(figsize=(11, max(3.5, 0.35 * len(labels) + 1)))
    left, right = fig.subplots(1, 2)
    rated = np.isfinite(urgency) & np.isfinite(impact)
    left.scatter(urgency[rated], impact[rated], c=colours[rated], s=60)
    for i in np.flatnonzero(rated).tolist():
        point = (urgency[i], impact[i])
        left.annotate(labels[i], point, fontsize=7, xytext=(4, 4), textcoords="offset points")
    left.set(xlim=(0.5, 5.5), ylim=(0.5, 5.5), xlabel=t["urgency_axis"], ylabel=t["impact_axis"])
    left.set_title(t["map_title"])

    order = np.argsort(consensus)
    right.barh([labels[i] for i in order], consensus[order], color=colours[order])
    right.set(xlim=(0, 1), xlabel=t["consensus_axis"])
    right.set_title(t["consensus_title"])
    right.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
