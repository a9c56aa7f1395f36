"""Anonymity is in the schema: the roster and the content share no link, no time, no order, and
after close the database alone (even with the old round key) cannot link anyone to anything."""

from __future__ import annotations

import uuid

from sqlalchemy import Date, DateTime, inspect, select

from bot.keys import FileKeyStore, decode_kek, new_kek, pseudonym
from bot.persistence.tables import BallotRow, Base, IdeaRow, ParticipantRow
from bot.refs import Platform, UserRef
from tests.core import story
from tests.harness import Harness, make_harness

CONTENT = ("ideas", "ballots")


def test_content_tables_have_no_link_no_time_and_no_user_column() -> None:
    for name in CONTENT:
        table = Base.metadata.tables[name]
        for fk in table.foreign_keys:
            assert fk.column.table.name == "rounds", f"{name} points at {fk.column.table.name}"
        for col in table.columns:
            assert not isinstance(col.type, DateTime | Date), f"{name}.{col.name} is a timestamp"
            assert col.name not in ("user_id", "participant_id", "platform", "workspace_id", "sector")
    roster = Base.metadata.tables["participants"]
    assert not any(fk.column.table.name in CONTENT for fk in roster.foreign_keys)


async def test_ids_are_random_uuid4(harness: Harness) -> None:
    await story.to_vote(harness)
    await story.vote(harness, "raj", 1, "Agree")
    async with harness.app.sessions() as s:
        ids = list(await s.scalars(select(IdeaRow.id))) + list(await s.scalars(select(BallotRow.id)))
        ids += list(await s.scalars(select(ParticipantRow.id)))
    assert ids
    assert all(uuid.UUID(hex=i).version == 4 for i in ids)


async def test_A9_after_close_nobody_can_link_a_person_to_an_idea_or_a_ballot(engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    keys = FileKeyStore(tmp_path / "keys", decode_kek(new_kek()))
    h = await make_harness(engine, keys=keys)
    try:
        rid = await story.to_vote(h)
        stolen_key = keys.get(rid)  # an operator copies the round key while the round is open
        assert stolen_key is not None
        for name, _p, _s in story.PEOPLE:
            await story.vote(h, name, 1, "Agree")
        maya = h.person("maya")
        await h.driver.command(maya, "next")
        form = await h.driver.command(maya, "goal")
        assert form is not None
        await h.driver.submit(maya, form, await story.goal_values())
        await h.driver.command(maya, "next")
        await h.driver.command(maya, "close")
        assert await h.scalar("select phase from rounds") == "closed"
        assert keys.get(rid) is None
        assert not list((tmp_path / "keys").glob(f"{rid}*"))
        # Try to link, with everything the database holds plus the stolen key.
        async with h.app.sessions() as s:
            roster = list(await s.scalars(select(ParticipantRow)))
            voter_keys = set(await s.scalars(select(BallotRow.voter_key)))
            author_keys = set(await s.scalars(select(IdeaRow.author_key)))
        assert len(roster) == len(story.PEOPLE)
        assert voter_keys
        candidates = {
            pseudonym(stolen_key, UserRef(Platform(p.platform), p.workspace_id, p.user_id).key())
            for p in roster
        }
        assert not candidates & voter_keys
        assert author_keys == {None}
        # No column of the content tables holds a roster value.
        roster_values = {p.user_id for p in roster} | {p.id for p in roster}
        async with h.app.engine.connect() as conn:
            for table in CONTENT:
                rows = (await conn.execute(Base.metadata.tables[table].select())).all()
                assert not roster_values & {str(v) for row in rows for v in row}
        # No pseudonym ever reached anything a participant saw (texts, button ids), and another
        # round's key (so its pseudonyms) has nothing to do with this one's.
        seen = " ".join(i.text + " ".join(b.action_id for b in i.buttons) for i in h.shown())
        assert not any(p in seen for p in candidates | voter_keys)
        keys.create("0" * 32)
        assert keys.get("0" * 32) != stolen_key
    finally:
        await h.close()


async def test_release_rewrites_rows_so_storage_order_says_nothing(harness: Harness) -> None:
    h = harness
    await story.start(h)
    await story.link_discord(h)
    await story.join_all(h)
    for n in range(3):
        await story.contribute(h, "raj", f"raj {n}")
    pending = await h.scalar("select count(*) from ideas where author_key is not null")
    assert pending == 3
    await h.driver.command(h.person("maya"), "next")
    assert await h.scalar("select count(*) from ideas where author_key is not null") == 0
    assert await h.scalar("select count(*) from ideas where status = 'released'") == 3


def test_no_timestamp_column_anywhere_near_identity() -> None:
    insp_cols = [c.name for c in Base.metadata.tables["participants"].columns]
    assert "created_at" not in insp_cols
    assert "joined_at" not in insp_cols
    assert inspect(ParticipantRow).primary_key[0].name == "id"


async def test_our_logs_never_carry_content_or_user_ids(harness: Harness, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level("DEBUG", logger="convene")
    await story.to_vote(harness)
    for name, _p, _s in story.PEOPLE:
        await story.vote(harness, name, 1, "Agree")
    await harness.driver.command(harness.person("maya"), "next")
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("convene"))
    texts = [t for texts in story.IDEAS.values() for t in texts]
    assert not any(t in logged for t in texts)
    assert not any(f"U-{name}" in logged for name, _p, _s in story.PEOPLE)
