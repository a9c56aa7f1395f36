"""The engine on five real Polis conversations, against Polis's own groups and red-dwarf."""

from __future__ import annotations

import numpy as np
import pytest

from bot.consensus import analyze
from tests.consensus.conftest import CONVERSATIONS, ari, conversation, red_dwarf

SLOW = {"vtaiwan.uberx", "american-assembly.bowling-green"}
PARAMS = [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in CONVERSATIONS]
# ARI with Polis's groups as measured; bowling-green and london cannot match because Polis's
# groups depend on its run history (k-smoothing, centres carried over from earlier runs,
# moderation after the last math run), which an export does not contain.
MEASURED_ARI = {
    "london.youth.policing": 0.12,
    "canadian-electoral-reform": 1.0,
    "scoop-hivemind.biodiversity": 0.93,
    "vtaiwan.uberx": 0.82,
    "american-assembly.bowling-green": 0.42,
}


def _ours(name: str) -> tuple[np.ndarray, np.ndarray]:
    conv = conversation(name)
    analysis = analyze(conv.table, rejected=conv.rejected)
    row = {pid: i for i, pid in enumerate(conv.participant_ids)}
    polis = np.array(list(conv.polis_groups.values()))
    return polis, analysis.groups[[row[p] for p in conv.polis_groups]]


@pytest.mark.parametrize("name", PARAMS)
def test_groups_match_polis_at_least_as_well_as_red_dwarf(name: str) -> None:
    conv = conversation(name)
    polis, ours = _ours(name)
    ours_ari = ari(polis, ours)
    assert ours_ari >= MEASURED_ARI[name] - 0.01
    theirs = red_dwarf(name)["groups"]
    theirs_ari = ari(polis, np.array([theirs.get(p, -1) for p in conv.polis_groups]))
    print(f"{name}: ARI ours {ours_ari:.3f}, red-dwarf {theirs_ari:.3f}")
    assert ours_ari >= theirs_ari - 1e-9


@pytest.mark.parametrize("name", ["canadian-electoral-reform", "scoop-hivemind.biodiversity"])
def test_groups_match_polis_closely(name: str) -> None:
    polis, ours = _ours(name)
    assert ari(polis, ours) >= 0.9


@pytest.mark.parametrize("name", PARAMS)
def test_top10_consensus_agrees_with_red_dwarf(name: str) -> None:
    conv = conversation(name)
    analysis = analyze(conv.table, rejected=conv.rejected)
    order = np.lexsort((np.arange(len(analysis.gac)), -analysis.gac))[:10]
    ours = {conv.statement_ids[c] for c in order.tolist()}
    overlap = len(ours & set(red_dwarf(name)["top10"]))
    print(f"{name}: top-10 overlap with red-dwarf {overlap}")
    assert overlap >= 9


@pytest.mark.parametrize("name", PARAMS)
def test_gac_on_polis_groups_matches_formula(name: str) -> None:
    """Recompute GAC over Polis's own groups with plain loops and compare with the engine's."""
    from bot.consensus.engine import _counts, _smoothed_product

    conv = conversation(name)
    t = conv.table
    group_of = np.full(t.n_participants, -1)
    for i, pid in enumerate(conv.participant_ids):
        group_of[i] = conv.polis_groups.get(pid, -1)
    ids = sorted(set(conv.polis_groups.values()))
    agree = {(g, c): 0 for g in ids for c in range(t.n_ideas)}
    seen = dict(agree)
    for p, c, v in zip(t.participant.tolist(), t.idea.tolist(), t.value.tolist(), strict=True):
        if group_of[p] >= 0:
            seen[group_of[p], c] += 1
            agree[group_of[p], c] += v == 1
    expected = [float(np.prod([(agree[g, c] + 1) / (seen[g, c] + 2) for g in ids])) for c in range(t.n_ideas)]
    grouped = group_of[t.participant] >= 0
    rank = {g: r for r, g in enumerate(ids)}
    keys = np.array([rank[g] for g in group_of[t.participant][grouped]]) * t.n_ideas + t.idea[grouped]
    a, _, s = (x.reshape(len(ids), t.n_ideas) for x in _counts(keys, t.value[grouped], len(ids) * t.n_ideas))
    np.testing.assert_allclose(_smoothed_product(a, s), expected, rtol=1e-12)
