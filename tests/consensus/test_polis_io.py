"""Polis CSV export: loading, writing, round trip and malformed files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bot.consensus import ConsensusInputError, VoteTable, analyze
from bot.consensus.polis import analysis_to_json, load_polis_export, write_polis_export
from tests.consensus.conftest import conversation


def _triples(t: VoteTable) -> list[tuple[int, int, int]]:
    return sorted(zip(t.participant.tolist(), t.idea.tolist(), t.value.tolist(), strict=True))


def _table() -> VoteTable:
    rng = np.random.default_rng(0)
    cells = [(p, i) for p in range(12) for i in range(6) if rng.random() < 0.8]
    p, i = zip(*cells, strict=True)
    return VoteTable.from_arrays(12, 6, p, i, rng.choice([-1, 0, 1], len(cells)))


def test_round_trip(tmp_path: Path) -> None:
    table = _table()
    statements = [(s, f'statement, "{s}"\nline two') for s in (3, 5, 8, 13, 21, 34)]
    labels = [f"p{n}" for n in range(12)]
    write_polis_export(tmp_path, statements=statements, table=table, participant_labels=labels)
    for drop_votes in (False, True):
        if drop_votes:
            (tmp_path / "votes.csv").unlink()  # falls back to participants-votes.csv
        conv = load_polis_export(tmp_path)
        assert conv.participant_ids == labels
        assert conv.statement_ids == [s for s, _ in statements]
        assert conv.statement_texts == [t for _, t in statements]
        assert _triples(conv.table) == _triples(table)
        assert conv.polis_groups == {}


def test_latest_vote_wins_and_rejected_left_out(tmp_path: Path) -> None:
    (tmp_path / "comments.csv").write_text(
        "timestamp,datetime,comment-id,author-id,agrees,disagrees,moderated,comment-body\n"
        "1,,0,1,0,0,1,kept\n1,,1,1,0,0,-1,rejected\n1,,2,1,0,0,0,unmoderated\n"
    )
    (tmp_path / "votes.csv").write_text(
        "timestamp,datetime,comment-id,voter-id,vote\n20,,0,7,-1\n10,,0,7,1\n5,,1,7,1\n5,,2,9,0\n30,,2,9,1\n"
    )
    conv = load_polis_export(tmp_path)
    assert conv.statement_ids == [0, 2]
    assert conv.participant_ids == ["7", "9"]
    assert _triples(conv.table) == [(0, 0, -1), (1, 1, 1)]
    assert conv.rejected.n_ideas == 1
    assert conv.rejected.votes.tolist() == [1, 0]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "comments.csv"),
        ({"comments.csv": ""}, "comments.csv: file is empty"),
        ({"comments.csv": "comment-id,moderated\n"}, "missing column"),
        ({"comments.csv": "comment-id,moderated,comment-body\n0,1,x\n"}, "neither"),
        (
            {"comments.csv": "comment-id,moderated,comment-body\n0,1,x\n", "votes.csv": "timestamp,vote\n"},
            "votes.csv: missing column",
        ),
        (
            {
                "comments.csv": "comment-id,moderated,comment-body\n0,1,x\n",
                "votes.csv": "timestamp,datetime,comment-id,voter-id,vote\n1,,0,1,5\n",
            },
            "votes.csv: vote values",
        ),
        (
            {
                "comments.csv": "comment-id,moderated,comment-body\n0,1,x\n",
                "votes.csv": "timestamp,datetime,comment-id,voter-id,vote\n1,,zero,1,1\n",
            },
            r"votes.csv, line 2: expected an integer",
        ),
    ],
)
def test_malformed_exports(tmp_path: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ConsensusInputError, match=message):
        load_polis_export(tmp_path)


def test_analysis_to_json_shape() -> None:
    conv = conversation("canadian-electoral-reform")
    analysis = analyze(conv.table, rejected=conv.rejected)
    out = analysis_to_json(conv, analysis, 0.25)
    assert set(out) == {"participants", "statements", "k", "groups", "consensus", "representative", "seconds"}
    assert out["participants"] == 448
    assert out["statements"] == 152
    assert out["k"] == 2
    assert len(out["consensus"]) == 152
    assert set(out["consensus"][0]) == {"statement", "gac"}
    assert set(out["representative"]) == {"0", "1"}
    assert all(isinstance(s, int) for ids in out["representative"].values() for s in ids)
    json.dumps(out)  # plain JSON types only
