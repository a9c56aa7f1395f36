"""The core refuses every transition the table does not allow, and a convener walks the path."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select

from bot.domain.errors import DomainError
from bot.domain.phases import Phase
from bot.persistence.tables import RoundRow
from bot.service.handlers import rounds
from tests.core import story
from tests.domain.test_phases import ALLOWED
from tests.harness import Harness


@pytest.mark.parametrize(("src", "dst"), sorted(set(itertools.product(Phase, Phase)) - ALLOWED))
async def test_the_core_refuses_every_other_transition(harness: Harness, src: Phase, dst: Phase) -> None:
    rid = await story.start(harness)
    async with harness.app.sessions() as s, s.begin():
        rnd = await s.get(RoundRow, rid)
        assert rnd is not None
        rnd.phase = src.value

    async def attempt() -> None:
        async with harness.app.sessions() as s, s.begin():
            rnd = await s.get(RoundRow, rid)
            assert rnd is not None
            unit = harness.app.core.bus.unit(s, None)
            unit.round = rnd
            await rounds.transition(unit, rnd, dst)

    with pytest.raises(DomainError) as err:
        await attempt()
    assert err.value.code == "bad_transition"
    async with harness.app.sessions() as s:
        assert await s.scalar(select(RoundRow.phase).where(RoundRow.id == rid)) == src.value


async def test_a_convener_walks_the_whole_path_and_cancel_works_from_an_open_phase(harness: Harness) -> None:
    h = harness
    await story.to_vote(h)
    maya = h.person("maya")
    await story.vote(h, "raj", 1, "Agree")
    await h.driver.command(maya, "next")  # vote -> goals
    assert "no_goals" not in h.privates("maya")[-1]
    await h.driver.command(maya, "next")  # refused: no goal yet
    assert "Set at least one goal" in h.privates("maya")[-1]
    form = await h.driver.command(maya, "goal")
    assert form is not None
    await h.driver.submit(maya, form, await story.goal_values())
    await h.driver.command(maya, "next")  # goals -> actions
    await h.driver.command(maya, "cancel")
    assert await h.scalar("select phase from rounds") == "cancelled"
    assert "was cancelled" in h.public_text()
