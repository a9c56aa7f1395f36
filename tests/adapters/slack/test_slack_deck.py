"""The voting deck on Slack: signed clicks through bolt, each answered through its own response_url,
the card replaced in place (an ephemeral message, as Slack does it), nothing posted per vote."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text

from tests.adapters.slack.rig import CHANNEL, USERS, Rig, card_idea, card_text, rig, seen_text
from tests.platform_fakes.slack import FakeSlackWebAPI

IDEAS = ("Safe routes to school", "Light the canal path", "A repair café in the library")


async def to_vote(r: Rig) -> None:
    await r.form(
        "maya", "start", {"title": "Safer streets", "purpose": "Common goals", "template": "standard"}
    )
    for who in ("alice", "bob"):
        await r.form(who, "join", {"sector": "resident"})
    for who, idea in zip(("alice", "bob", "alice"), IDEAS, strict=True):
        await r.form(who, "contribute", {"text": idea})
    await r.command("maya", "next")


async def ballots(r: Rig) -> list[tuple[int, str]]:
    async with r.app.engine.connect() as conn:
        rows = await conn.execute(text("select idea_number, choice from ballots order by idea_number"))
        return [(int(n), str(c)) for n, c in rows]


def public(r: Rig) -> list[str]:
    return [json.dumps(m.get("blocks"), sort_keys=True) for m in r.fake.messages(CHANNEL)]


async def test_every_vote_and_its_next_card_go_through_the_click(
    fake_slack: FakeSlackWebAPI, tmp_path: Path
) -> None:
    async with rig(fake_slack, tmp_path) as r:
        await to_vote(r)
        release = r.public_text()
        assert all(idea in release for idea in IDEAS)
        assert len(r.channel_buttons(r":deck$")) == 2  # the release post and the round card
        before = public(r)
        r.fake.reset()
        card = await r.open_deck("alice")
        assert card is not None
        [opened] = r.fake.calls("response_url")
        assert opened["response_type"] == "ephemeral"
        assert opened["replace_original"] is False
        seen = []
        for n in range(3):
            idea = card_idea(r.card("alice"))
            assert idea is not None
            seen.append(idea)
            assert f"{n} of 3 voted" in card_text(r.card("alice") or {})
            await r.press("alice", "Agree")
            now = r.card("alice")
            assert now is not None
            assert now["ts"] == card["ts"]  # the same ephemeral message, replaced in place
        assert "voted on every idea (3)" in card_text(r.card("alice") or {})
        answers = r.fake.calls("response_url")[1:]
        assert len(answers) == 3
        assert all(c["replace_original"] is True for c in answers)
        # Nothing per vote through the rate-limited Web API: no ephemeral post, no channel post or edit.
        assert not r.fake.calls("chat.postEphemeral")
        assert not r.fake.calls("chat.postMessage")
        assert not r.fake.calls("chat.update")
        assert public(r) == before
        assert sorted(seen) == [1, 2, 3]
        assert await ballots(r) == [(1, "agree"), (2, "agree"), (3, "agree")]
        assert r.card("bob") is None  # only alice sees her card


async def test_stale_forged_and_late_clicks_are_answered_on_the_card(
    fake_slack: FakeSlackWebAPI, tmp_path: Path
) -> None:
    async with rig(fake_slack, tmp_path) as r:
        await to_vote(r)
        first = await r.open_deck("bob")
        assert first is not None
        idea = card_idea(first)
        await r.press("bob", "Disagree")
        await r.press("bob", "Agree", card=first)  # a double click, arriving with the old card
        assert f"Your vote on Idea {idea} was already recorded" in card_text(r.card("bob") or {})
        forged = dict(first)
        forged["blocks"] = [
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": f"cv:{'cd' * 16}:v:{idea}:a:-",
                        "text": {"type": "plain_text", "text": "Agree"},
                    }
                ],
            }
        ]
        await r.press("bob", "Agree", card=forged)  # another round's id
        assert "That round no longer exists here" in card_text(r.card("bob") or {})
        await r.open_deck("bob")
        await r.command("maya", "next")  # voting closes
        await r.press("bob", "Agree")
        assert "Voting on Safer streets has closed" in card_text(r.card("bob") or {})
        assert await ballots(r) == [(idea or 0, "disagree")]
        everything_public = r.public_text()
        for said in (
            "already recorded",
            "no longer exists",
            "Voting on Safer streets has closed",
            "Traceback",
        ):
            assert said not in everything_public


async def test_a_card_whose_response_url_expired_comes_as_a_new_ephemeral(
    fake_slack: FakeSlackWebAPI, tmp_path: Path
) -> None:
    async with rig(fake_slack, tmp_path) as r:
        await to_vote(r)
        card = await r.open_deck("alice")
        assert card is not None
        r.fake.advance_clock(31 * 60)  # the click's response_url dies after 30 minutes
        r.fake.fail_next("response_url", status=404, error="expired_url")
        await r.press("alice", "Pass")
        [sent] = [c for c in r.fake.calls("chat.postEphemeral") if c["user"] == USERS["alice"]][-1:]
        assert "Your vote on Idea" in seen_text(sent.blocks)
        assert await ballots(r) == [(card_idea(card) or 0, "pass")]
