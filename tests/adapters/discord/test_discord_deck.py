"""The voting deck on Discord: an unmodified discord.py client, every click answered by its own
interaction callback (the card updated in place), nothing posted or edited in the channel per vote."""

from __future__ import annotations

from pathlib import Path

from tests.adapters.discord.rig import Rig, card_idea, make_rig
from tests.platform_fakes import discord_payloads as p

IDEAS = ("Plant reeds along the bank", "Monthly clean-up walks", "Bins at every bridge")


async def to_vote(rig: Rig) -> str:
    rid = await rig.start_round()
    for who in ("alice", "bob"):
        await rig.join(who, rid)
    for who, idea in zip(("alice", "bob", "alice"), IDEAS, strict=True):
        await rig.contribute(who, rid, idea)
    await rig.confirmed(await rig.slash("owner", "next"), "Cleaner river", "vote")
    await rig.wait_public(lambda m: f"cv:{rid}:deck" in rig.buttons(m))
    await rig.settle()
    return rid


def channel_writes(rig: Rig) -> int:
    return len(rig.fake.calls_to("POST /channels/{channel_id}/messages")) + len(
        rig.fake.calls_to("PATCH /channels/{channel_id}/messages/{message_id}")
    )


async def test_each_vote_updates_the_card_through_its_own_callback(tmp_path: Path) -> None:
    async with make_rig(tmp_path) as rig, rig.running():
        rid = await to_vote(rig)
        writes = channel_writes(rig)
        card = await rig.open_deck("alice", rid)
        assert "0 of 3 voted" in card["content"]
        meant: dict[int, str] = {}
        for n, choice in enumerate(("Agree", "Disagree", "Pass")):
            idea = card_idea(rig.card("alice"))
            assert idea is not None
            assert f"**Idea {idea}**" in (rig.card("alice") or {})["content"]  # the idea the buttons name
            meant[idea] = choice.lower()
            rec = await rig.press("alice", choice)
            assert rec.response is not None
            assert rec.response["type"] == 7
            assert rec.attempts[0].at - rec.dispatched_at < 3.0
            assert not rec.followups  # the answer is the callback itself
            now = rig.card("alice") or {}
            assert now["flags"] & p.FLAG_EPHEMERAL
            assert f"Your vote on Idea {idea} is recorded" in now["content"]
            if n < 2:
                assert f"{n + 1} of 3 voted" in now["content"]
        assert "voted on every idea (3)" in (rig.card("alice") or {})["content"]
        await rig.settle()
        assert channel_writes(rig) == writes  # no public post or edit per vote
        assert sorted(meant) == [1, 2, 3]
        for idea, choice in meant.items():  # each vote counted for the idea its card showed
            assert await rig.scalar(f"select choice from ballots where idea_number = {idea}") == choice
        for _call, body in rig.fake.sent_messages():
            assert body.get("allowed_mentions") == {"parse": []}


async def test_stale_and_late_clicks_are_answered_on_the_card(tmp_path: Path) -> None:
    async with make_rig(tmp_path) as rig, rig.running():
        rid = await to_vote(rig)
        first = await rig.open_deck("bob", rid)
        idea = card_idea(first)
        await rig.press("bob", "Disagree")
        await rig.press("bob", "Agree", first)  # a double click, arriving with the old card
        assert f"Your vote on Idea {idea} was already recorded" in (rig.card("bob") or {})["content"]
        await rig.confirmed(await rig.slash("owner", "next"), "Cleaner river", "goals")
        await rig.press("bob", "Agree")
        closed = rig.card("bob") or {}
        assert "Voting on Cleaner river has closed" in closed["content"]
        assert closed["components"] == []
        assert await rig.scalar("select choice from ballots") == "disagree"
        public = "\n".join(m["content"] for m in rig.public())
        assert "already recorded" not in public
        assert "Voting on Cleaner river has closed" not in public
