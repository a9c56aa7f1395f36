"""`convene analyze DIR`: the engine on a Polis CSV export."""

from __future__ import annotations

import json
import time
from typing import TextIO

from bot.consensus.engine import analyze
from bot.consensus.model import ConsensusInputError
from bot.consensus.polis import analysis_to_json, load_polis_export
from bot.prompts import Prompts


def analyze_command(directory: str, *, as_json: bool, seed: int, out: TextIO, err: TextIO) -> int:
    try:
        conv = load_polis_export(directory)
        started = time.perf_counter()
        result = analyze(conv.table, seed=seed, rejected=conv.rejected)
        seconds = time.perf_counter() - started
    except ConsensusInputError as exc:
        err.write(f"convene: {exc}\n")
        return 2
    data = analysis_to_json(conv, result, seconds)
    if as_json:
        out.write(json.dumps(data) + "\n")
        return 0
    texts = dict(zip(conv.statement_ids, conv.statement_texts, strict=True))
    sizes = [int((result.groups == g).sum()) for g in range(result.k)]
    params = {
        "participants": data["participants"],
        "statements": data["statements"],
        "k": result.k,
        "sizes": sizes,
        "top": [
            {"statement": c["statement"], "gac": c["gac"], "text": texts.get(c["statement"], "")}
            for c in data["consensus"][:10]
        ],
        "representative": dict(data["representative"].items()),
        "divisive": [conv.statement_ids[i] for i in result.divisive],
        "notes": result.notes,
        "seconds": seconds,
    }
    out.write(Prompts().render("cli/analyze", params) + "\n")
    return 0
