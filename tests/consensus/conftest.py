"""Shared fixtures: the real Polis conversations in shared/data/polis and red-dwarf as a peer."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.consensus.polis import PolisConversation, load_polis_export

POLIS_DATA = Path(
    os.environ.get("CONVENE_POLIS_DATA")
    or Path(__file__).resolve().parents[2].parent / "shared" / "data" / "polis"
)
CONVERSATIONS = [
    "london.youth.policing",
    "canadian-electoral-reform",
    "scoop-hivemind.biodiversity",
    "vtaiwan.uberx",
    "american-assembly.bowling-green",
]


def ari(a: np.ndarray, b: np.ndarray) -> float:
    """Adjusted Rand index from the contingency table (Hubert & Arabie)."""
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    table = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(table, (ai.reshape(-1), bi.reshape(-1)), 1)

    def pairs(x: np.ndarray) -> float:
        return float(np.sum(x * (x - 1) / 2))

    index, rows, cols = pairs(table), pairs(table.sum(1)), pairs(table.sum(0))
    expected = rows * cols / pairs(np.array([len(a)]))
    top = (rows + cols) / 2
    return 1.0 if top == expected else (index - expected) / (top - expected)


def needs_data(name: str) -> Path:
    path = POLIS_DATA / name
    if not path.is_dir():
        pytest.skip(f"Polis data not found at {path}")
    return path


@cache
def conversation(name: str) -> PolisConversation:
    return load_polis_export(needs_data(name))


@cache
def red_dwarf(name: str) -> dict[str, Any]:
    """red-dwarf's run_pipeline on the same votes, given rejected statements as Polis does."""
    pytest.importorskip("reddwarf")
    from reddwarf.implementations.polis import run_pipeline

    conv = conversation(name)
    t = conv.table
    votes = [
        {"participant_id": int(conv.participant_ids[p]), "statement_id": conv.statement_ids[i], "vote": v}
        for p, i, v in zip(t.participant.tolist(), t.idea.tolist(), t.value.tolist(), strict=True)
    ]
    rejected = _rejected_votes(name)
    result = run_pipeline(
        votes=votes + rejected,
        mod_out_statement_ids=sorted({v["statement_id"] for v in rejected}),
        random_state=0,
    )
    labels = result.participants_df["cluster_id"].dropna()
    gac = result.statements_df["group-aware-consensus"]
    gac = gac[gac.index.isin(conv.statement_ids)]
    return {
        "groups": {str(pid): int(g) for pid, g in labels.items()},
        "top10": [int(s) for s in gac.sort_values(ascending=False, kind="stable").index[:10]],
    }


def _rejected_votes(name: str) -> list[dict[str, int]]:
    """Votes on rejected statements, read with the loader's own reader (red-dwarf zeroes them)."""
    import csv

    path = needs_data(name)
    with (path / "comments.csv").open(newline="", encoding="utf-8") as handle:
        rejected = {int(r["comment-id"]) for r in csv.DictReader(handle) if r["moderated"] == "-1"}
    out: list[dict[str, int]] = []
    if (path / "votes.csv").exists():
        latest: dict[tuple[int, int], tuple[int, int]] = {}
        with (path / "votes.csv").open(newline="", encoding="utf-8") as handle:
            for r in csv.DictReader(handle):
                key = (int(r["voter-id"]), int(r["comment-id"]))
                if key[1] in rejected and (key not in latest or int(r["timestamp"]) >= latest[key][0]):
                    latest[key] = (int(r["timestamp"]), int(r["vote"]))
        out = [{"participant_id": p, "statement_id": s, "vote": v} for (p, s), (_, v) in latest.items()]
    else:
        with (path / "participants-votes.csv").open(newline="", encoding="utf-8") as handle:
            for r in csv.DictReader(handle):
                out += [
                    {"participant_id": int(r["participant"]), "statement_id": s, "vote": int(r[str(s)])}
                    for s in rejected
                    if r.get(str(s), "") != ""
                ]
    return out
