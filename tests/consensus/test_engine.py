"""Unit tests of analyze() and ratings_medians() on small synthetic ballots."""

from __future__ import annotations

import numpy as np
import pytest

from bot.consensus import Analysis, ConsensusConfig, ConsensusInputError, VoteTable, analyze, ratings_medians


def two_camps(
    n_per: int = 30, n_ideas: int = 12, seed: int = 1, noise: float = 0.1
) -> tuple[VoteTable, np.ndarray]:
    """Two camps that vote oppositely on ideas 0..n-3 and both agree on the last two ideas."""
    rng = np.random.default_rng(seed)
    truth = np.repeat([0, 1], n_per)
    p, i, v = [], [], []
    for person, camp in enumerate(truth.tolist()):
        for idea in range(n_ideas):
            if rng.random() < 0.15:
                continue  # missing vote
            vote = (1 if idea % 2 == camp else -1) if idea < n_ideas - 2 else 1
            if rng.random() < noise:
                vote = int(rng.choice([-1, 0, 1]))
            p.append(person)
            i.append(idea)
            v.append(vote)
    return VoteTable.from_arrays(len(truth), n_ideas, p, i, v), truth


def test_recovers_known_groups() -> None:
    table, truth = two_camps()
    result = analyze(table)
    assert result.k == 2
    assert (result.groups >= 0).all()
    same = (result.groups == truth).mean()
    assert max(same, 1 - same) == 1.0
    assert result.notes == []


def test_deterministic_per_seed() -> None:
    table, _ = two_camps(n_per=80, seed=3)
    a, b = analyze(table, seed=5), analyze(table, seed=5)
    np.testing.assert_array_equal(a.groups, b.groups)
    np.testing.assert_array_equal(a.gac, b.gac)
    assert a.ranking == b.ranking
    assert a.representative == b.representative


def test_common_ground_and_ranking() -> None:
    table, _ = two_camps()
    result = analyze(table)
    n = table.n_ideas
    # The two shared ideas are common ground and rank first; divisive ideas are the split ones.
    assert set(np.flatnonzero(result.common_ground).tolist()) == {n - 2, n - 1}
    assert set(result.ranking[:2]) == {n - 2, n - 1}
    assert result.divisive
    assert all(d < n - 2 for d in result.divisive)
    for g, ideas in result.representative.items():
        assert 0 < len(ideas) <= 5
        assert all(0 <= c < n for c in ideas), g


def test_common_ground_needs_every_group_and_sector() -> None:
    # Idea 0: everyone agrees. Idea 1: group A agrees, group B is split 50/50.
    table, _ = two_camps(n_per=20, n_ideas=10, noise=0.0)
    p, i, v = list(table.participant), list(table.idea), list(table.value)
    extra = table.n_ideas
    for person in range(40):
        p.append(person)
        i.append(extra)
        v.append(1 if person < 20 or person % 2 == 0 else -1)
    t = VoteTable.from_arrays(40, extra + 1, p, i, v)
    result = analyze(t)
    assert result.common_ground[extra - 1]
    assert not result.common_ground[extra]  # one group is at 50 % < 60 %

    # A sector (k = 5 voters on the idea) that disagrees on an otherwise shared idea removes it from
    # common ground.
    sectors: list[str | None] = ["business"] * 5 + ["civic"] * 35
    shared = extra - 1
    votes = [(pp, ii, vv) for pp, ii, vv in zip(p, i, v, strict=True) if not (pp < 5 and ii == shared)]
    votes += [(pp, shared, -1) for pp in range(5)]
    t2 = VoteTable.from_arrays(40, extra + 1, *(list(col) for col in zip(*votes, strict=True)))
    with_sector = analyze(t2, sectors=sectors)
    assert set(with_sector.sector_agreement) == {"business", "civic"}
    assert with_sector.sector_agreement["business"][shared] == 0.0
    assert with_sector.sector_gac is not None
    assert not with_sector.common_ground[shared]

    # With one business voter missing on it, that sector's cell is not shown and does not count.
    fewer = [row for row in votes if row[:2] != (0, shared)]
    t3 = VoteTable.from_arrays(40, extra + 1, *(list(col) for col in zip(*fewer, strict=True)))
    below_k = analyze(t3, sectors=sectors)
    assert np.isnan(below_k.sector_agreement["business"][shared])
    assert below_k.common_ground[shared]


def test_sectors_below_k_are_hidden() -> None:
    table, _ = two_camps()
    sectors: list[str | None] = ["tiny"] * 4 + [None] * 6 + ["big"] * 50
    result = analyze(table, sectors=sectors, config=ConsensusConfig(sector_min_voters=5))
    assert list(result.sector_agreement) == ["big"]
    assert "sectors_below_k_hidden" in result.notes
    none_shown = analyze(table, sectors=["tiny"] * 4 + [None] * 56)
    assert none_shown.sector_gac is None
    assert none_shown.sector_agreement == {}


def test_gac_is_product_over_groups() -> None:
    table, _ = two_camps()
    result = analyze(table)
    for c in range(table.n_ideas):
        expected = 1.0
        for g in range(result.k):
            mask = (table.idea == c) & (result.groups[table.participant] == g)
            expected *= ((table.value[mask] == 1).sum() + 1) / (mask.sum() + 2)
        assert result.gac[c] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("table", "note"),
    [
        (VoteTable.from_arrays(0, 0, [], [], []), "empty"),
        (VoteTable.from_arrays(5, 3, [], [], []), "empty"),
        (VoteTable.from_arrays(3, 1, [0, 1, 2], [0, 0, 0], [1, 1, -1]), "too_few_ideas"),
        (VoteTable.from_arrays(1, 3, [0, 0, 0], [0, 1, 2], [1, -1, 0]), "too_few_voters"),
        (VoteTable.from_arrays(4, 2, [0, 1, 2, 3], [0, 0, 0, 1], [1, 1, 1, -1]), "too_few_voters"),
    ],
)
def test_small_input_falls_back_to_agreement(table: VoteTable, note: str) -> None:
    result = analyze(table, sectors=[None] * table.n_participants)
    assert note in result.notes
    assert result.k == 0
    assert (result.groups == -1).all()
    assert sorted(result.ranking) == list(range(table.n_ideas))
    assert result.representative == {}


def test_identical_voters_make_no_groups() -> None:
    p = np.repeat(np.arange(10), 8)
    i = np.tile(np.arange(8), 10)
    result = analyze(VoteTable.from_arrays(10, 8, p, i, np.ones(80)))
    assert result.k == 0
    assert "no_opinion_groups" in result.notes
    assert result.common_ground.all()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (VoteTable.from_arrays(2, 2, [0, 1], [0, 1], [1, 2]), "vote values"),
        (VoteTable.from_arrays(2, 2, [0, 2], [0, 1], [1, 1]), "participant index"),
        (VoteTable.from_arrays(2, 2, [0, 1], [0, -1], [1, 1]), "idea index"),
        (VoteTable.from_arrays(2, 2, [0, 0], [1, 1], [1, -1]), "more than once"),
        (
            VoteTable(2, 2, np.array([0, 1], np.int32), np.array([0], np.int32), np.array([1, 1], np.int8)),
            "length",
        ),
        (VoteTable(2, 2, np.zeros(1), np.zeros(1, np.int32), np.ones(1, np.int8)), "integer"),  # type: ignore[arg-type]
    ],
)
def test_malformed_input_raises(table: VoteTable, message: str) -> None:
    with pytest.raises(ConsensusInputError, match=message):
        analyze(table)


def test_sector_length_mismatch_raises() -> None:
    table, _ = two_camps()
    with pytest.raises(ConsensusInputError, match="sectors"):
        analyze(table, sectors=["a"])


def test_ratings_medians() -> None:
    urgency, impact = ratings_medians(
        np.array([0, 0, 0, 2, 2]), np.array([1, 5, 3, 2, 5]), np.array([4, 4, 4, 1, 2]), 4
    )
    np.testing.assert_array_equal(urgency, [3.0, np.nan, 3.5, np.nan])
    np.testing.assert_array_equal(impact, [4.0, np.nan, 1.5, np.nan])
    with pytest.raises(ConsensusInputError):
        ratings_medians(np.array([0]), np.array([6]), np.array([1]), 1)
    with pytest.raises(ConsensusInputError):
        ratings_medians(np.array([3]), np.array([1]), np.array([1]), 1)
    empty = ratings_medians(np.array([], int), np.array([]), np.array([]), 2)
    assert np.isnan(empty[0]).all()


def test_analysis_is_frozen() -> None:
    table, _ = two_camps()
    result = analyze(table)
    assert isinstance(result, Analysis)
    with pytest.raises(AttributeError):
        result.k = 3  # type: ignore[misc]


def test_A5_sector_figures_are_per_cell_and_leave_no_small_remainder() -> None:
    from bot.consensus.engine import sector_cells

    k = 5
    # Rows: sectors (officials, residents, business); columns: ideas. The last argument is every
    # voter on each idea, the undeclared included.
    voters = np.array([[5, 1, 5, 6, 0], [9, 9, 5, 6, 9], [0, 0, 3, 0, 0]])
    everyone = np.array([14, 10, 13, 14, 12])
    shown = sector_cells(voters, everyone, k)
    # Idea 0: both big cells shown, and nobody is left over.
    assert shown[:, 0].tolist() == [True, True, False]
    # Idea 1: one official is never a figure; residents alone would leave that one official (the
    # overall count minus the residents' figure), so they are hidden too.
    assert shown[:, 1].tolist() == [False, False, False]
    # Idea 2: 3 business voters + 0 undeclared left over: the smaller shown cell goes as well, and
    # what is left over (8) is at least k.
    assert shown[:, 2].tolist() == [False, True, False]
    # Idea 3: 2 undeclared voters would be the remainder; hiding officials leaves 8.
    assert shown[:, 3].tolist() == [False, True, False]
    # Idea 4: residents shown, 3 undeclared left over: hidden.
    assert shown[:, 4].tolist() == [False, False, False]
    # Whatever is shown, the voters outside it number 0 or at least k.
    outside = everyone - np.where(shown, voters, 0).sum(axis=0)
    assert all(o == 0 or o >= k for o in outside.tolist())


def test_A5_one_official_is_never_published_as_a_sector_figure() -> None:
    # 5 officials and 10 residents voted in the round, but only one official voted on idea 1: the
    # old rule (sectors with k voters in the round) published "Public sector 0%" for that idea.
    p, i, v = [], [], []
    for person in range(15):
        p.append(person), i.append(0), v.append(1)
        if person == 0 or person >= 5:
            p.append(person), i.append(1), v.append(-1 if person == 0 else 1)
    sectors: list[str | None] = ["public_sector"] * 5 + ["resident"] * 10
    result = analyze(VoteTable.from_arrays(15, 2, p, i, v), sectors=sectors)
    assert result.sector_agreement["public_sector"][0] == 1.0
    assert np.isnan(result.sector_agreement["public_sector"][1])
    assert np.isnan(result.sector_agreement["resident"][1])  # 11 - 10 would be that one official
    assert "sectors_below_k_hidden" in result.notes
