"""Read and write Polis CSV exports (comments.csv, votes.csv, participants-votes.csv)."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.consensus.model import Analysis, ConsensusInputError, RejectedIdeas, VoteTable

_COMMENTS = "comments.csv"
_VOTES = "votes.csv"
_PARTICIPANTS = "participants-votes.csv"
_COMMENT_COLUMNS = ["timestamp", "datetime", "comment-id", "author-id", "agrees", "disagrees", "moderated"]
_VOTE_COLUMNS = ["timestamp", "datetime", "comment-id", "voter-id", "vote"]
_PARTICIPANT_COLUMNS = ["participant", "group-id", "n-comments", "n-votes", "n-agree", "n-disagree"]


@dataclass(frozen=True)
class PolisConversation:
    table: VoteTable
    participant_ids: list[str]
    """Row i of the table is participant_ids[i]."""
    statement_ids: list[int]
    """Column j of the table is statement_ids[j] (accepted or unmoderated statements, ascending)."""
    statement_texts: list[str]
    polis_groups: dict[str, int]
    """Polis's own group per participant id (participants-votes.csv), only for grouped ones."""
    rejected: RejectedIdeas
    """Votes on rejected statements: pass to analyze(rejected=...) to group exactly as Polis."""


def _rows(path: Path, required: Sequence[str]) -> tuple[list[str], Iterator[list[str]]]:
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise ConsensusInputError(f"{path}: cannot open ({exc.strerror})") from exc
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
        handle.close()
        raise ConsensusInputError(f"{path}: file is empty")
    missing = [c for c in required if c not in header]
    if missing:
        handle.close()
        raise ConsensusInputError(f"{path}: missing column(s) {', '.join(missing)}")

    def rows() -> Iterator[list[str]]:
        with handle:
            yield from reader

    return header, rows()


def _int(path: Path, line: int, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        try:
            as_float = float(text)
        except ValueError:
            as_float = float("nan")
        if as_float.is_integer():
            return int(as_float)
        raise ConsensusInputError(f"{path}, line {line}: expected an integer, got {text!r}") from None


def _read_comments(path: Path) -> tuple[list[int], list[str], list[int]]:
    """Kept statement ids (ascending) and texts, and rejected (moderated = -1) ids."""
    header, rows = _rows(path, ["comment-id", "moderated", "comment-body"])
    cid, mod, body = (header.index(c) for c in ("comment-id", "moderated", "comment-body"))
    kept: dict[int, str] = {}
    rejected: list[int] = []
    for line, row in enumerate(rows, start=2):
        if len(row) < len(header):
            raise ConsensusInputError(f"{path}, line {line}: expected {len(header)} fields, got {len(row)}")
        if _int(path, line, row[mod]) == -1:
            rejected.append(_int(path, line, row[cid]))
        else:
            kept[_int(path, line, row[cid])] = row[body]
    ids = sorted(kept)
    return ids, [kept[i] for i in ids], sorted(rejected)


def _id_order(ids: Sequence[str]) -> list[str]:
    unique = set(ids)
    if all(i.lstrip("-").isdigit() for i in unique):
        return sorted(unique, key=int)
    return sorted(unique)


def _read_participants(
    path: Path, statement_col: dict[int, int], with_votes: bool
) -> tuple[list[str], dict[str, int], list[tuple[str, int, int]]]:
    """Participant ids in file order, Polis groups, and (participant, column, vote) triples."""
    header, rows = _rows(path, _PARTICIPANT_COLUMNS)
    first_vote = header.index("n-disagree") + 1
    pid, gid = header.index("participant"), header.index("group-id")
    headers = enumerate(header[first_vote:], first_vote)
    columns = [(j, statement_col.get(_int(path, 1, h))) for j, h in headers]
    kept = [(j, c) for j, c in columns if c is not None] if with_votes else []
    ids: list[str] = []
    groups: dict[str, int] = {}
    votes: list[tuple[str, int, int]] = []
    for line, row in enumerate(rows, start=2):
        if len(row) < len(header):
            raise ConsensusInputError(f"{path}, line {line}: expected {len(header)} fields, got {len(row)}")
        ids.append(row[pid])
        if row[gid] != "":
            groups[row[pid]] = _int(path, line, row[gid])
        votes.extend((row[pid], c, _int(path, line, row[j])) for j, c in kept if row[j] != "")
    if len(set(ids)) != len(ids):
        raise ConsensusInputError(f"{path}: a participant appears on more than one row")
    return ids, groups, votes


def _read_votes(path: Path, statement_col: dict[int, int]) -> list[tuple[str, int, int]]:
    """Latest vote per (voter, comment) by timestamp; later rows win ties."""
    header, rows = _rows(path, _VOTE_COLUMNS)
    ts, cid, vid, vote = (header.index(c) for c in ("timestamp", "comment-id", "voter-id", "vote"))
    latest: dict[tuple[str, int], tuple[int, int]] = {}
    for line, row in enumerate(rows, start=2):
        if len(row) < len(header):
            raise ConsensusInputError(f"{path}, line {line}: expected {len(header)} fields, got {len(row)}")
        col = statement_col.get(_int(path, line, row[cid]))
        if col is None:
            continue
        stamp = _int(path, line, row[ts]) if row[ts] else 0
        key = (row[vid], col)
        previous = latest.get(key)
        if previous is None or stamp >= previous[0]:
            latest[key] = (stamp, _int(path, line, row[vote]))
    return [(voter, col, v) for (voter, col), (_, v) in latest.items()]


def load_polis_export(directory: str | Path) -> PolisConversation:
    """Load a Polis export folder; rejected statements (moderated = -1) are left out.

    Votes come from votes.csv when present, else from participants-votes.csv.
    """
    folder = Path(directory)
    statement_ids, texts, rejected_ids = _read_comments(folder / _COMMENTS)
    # Rejected statements get negative columns so their votes can be told apart and set aside.
    statement_col = {sid: j for j, sid in enumerate(statement_ids)}
    statement_col.update({sid: -1 - r for r, sid in enumerate(rejected_ids)})
    participants_path, votes_path = folder / _PARTICIPANTS, folder / _VOTES
    if not votes_path.exists() and not participants_path.exists():
        raise ConsensusInputError(f"{folder}: neither {_VOTES} nor {_PARTICIPANTS} found")
    ids: list[str] = []
    groups: dict[str, int] = {}
    votes: list[tuple[str, int, int]] = []
    if participants_path.exists():
        ids, groups, votes = _read_participants(participants_path, statement_col, not votes_path.exists())
    source = votes_path if votes_path.exists() else participants_path
    if votes_path.exists():
        votes = _read_votes(votes_path, statement_col)
    known = set(ids)
    ids += _id_order([v[0] for v in votes if v[0] not in known])
    row_of = {pid: i for i, pid in enumerate(ids)}
    rows = np.fromiter((row_of[v[0]] for v in votes), dtype=np.int64, count=len(votes))
    cols = np.fromiter((v[1] for v in votes), dtype=np.int64, count=len(votes))
    values = np.fromiter((max(-2, min(2, v[2])) for v in votes), dtype=np.int8, count=len(votes))
    bad = np.flatnonzero(np.abs(values) > 1)
    if bad.size:
        raise ConsensusInputError(f"{source}: vote values must be -1, 0 or 1 ({bad.size} other values)")
    kept = cols >= 0
    table = VoteTable.from_arrays(len(ids), len(statement_ids), rows[kept], cols[kept], values[kept])
    rejected = RejectedIdeas(
        n_ideas=len(np.unique(cols[~kept])), votes=np.bincount(rows[~kept], minlength=len(ids))
    )
    return PolisConversation(table, ids, statement_ids, texts, groups, rejected)


def write_polis_export(
    directory: str | Path,
    *,
    statements: Sequence[tuple[int, str]],
    table: VoteTable,
    participant_labels: Sequence[str],
) -> None:
    """Write comments.csv, votes.csv and participants-votes.csv in Polis's column format.

    Timestamps are 0 and author ids blank: the export carries votes, not who wrote what or when.
    """
    if len(statements) != table.n_ideas or len(participant_labels) != table.n_participants:
        raise ConsensusInputError("statements and participant_labels must match the table's shape")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    n_i = table.n_ideas
    value = table.value.astype(np.int64)
    per_idea = {
        "agree": np.bincount(table.idea, weights=value == 1, minlength=n_i).astype(int),
        "disagree": np.bincount(table.idea, weights=value == -1, minlength=n_i).astype(int),
    }
    with (folder / _COMMENTS).open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow([*_COMMENT_COLUMNS, "comment-body"])
        for j, (sid, text) in enumerate(statements):
            out.writerow([0, "", sid, "", per_idea["agree"][j], per_idea["disagree"][j], 1, text])

    order = np.lexsort((table.idea, table.participant))
    with (folder / _VOTES).open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(_VOTE_COLUMNS)
        for r in order.tolist():
            sid = statements[table.idea[r]][0]
            out.writerow([0, "", sid, participant_labels[table.participant[r]], int(table.value[r])])

    matrix = np.full((table.n_participants, n_i), 2, dtype=np.int8)  # 2 marks "no vote"
    matrix[table.participant, table.idea] = table.value
    with (folder / _PARTICIPANTS).open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow([*_PARTICIPANT_COLUMNS, *(sid for sid, _ in statements)])
        for i, label in enumerate(participant_labels):
            row = matrix[i]
            voted = row != 2
            cells = ["" if v == 2 else str(v) for v in row.tolist()]
            counts = [int(voted.sum()), int((row == 1).sum()), int((row == -1).sum())]
            out.writerow([label, "", 0, *counts, *cells])


def analysis_to_json(conv: PolisConversation, analysis: Analysis, seconds: float) -> dict[str, Any]:
    """Summary for comparison with other engines; only grouped participants appear in "groups"."""
    return {
        "participants": conv.table.n_participants,
        "statements": conv.table.n_ideas,
        "k": analysis.k,
        "groups": {
            pid: g for pid, g in zip(conv.participant_ids, analysis.groups.tolist(), strict=True) if g >= 0
        },
        "consensus": [
            {"statement": conv.statement_ids[c], "gac": float(analysis.gac[c])} for c in analysis.ranking
        ],
        "representative": {
            str(g): [conv.statement_ids[c] for c in ideas] for g, ideas in analysis.representative.items()
        },
        "seconds": float(seconds),
    }
