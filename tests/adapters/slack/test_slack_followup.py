"""Follow-up on Slack, through real signed requests, bolt and the fake Web API: a reminder reaches
the owner in a DM (conversations.open, then chat.postMessage there), a click on its status button
in that DM records it, and the action's card in the channel is edited in place."""

from __future__ import annotations

from pathlib import Path

from tests.adapters.slack.rig import CHANNEL, USERS, Rig, rig, seen_text
from tests.platform_fakes.markup import slack_seen
from tests.platform_fakes.slack import FakeSlackWebAPI


async def closed_round_with_an_action_for_alice(r: Rig) -> None:
    await r.form(
        "maya", "start", {"title": "Safer streets", "purpose": "Agree goals", "template": "standard"}
    )
    for who in ("alice", "bob"):
        await r.form(who, "join", {"sector": "resident"})
    await r.form("alice", "contribute", {"text": "Light the canal path"})
    await r.command("maya", "next")
    for who in ("alice", "bob"):
        await r.open_deck(who)
        await r.press(who, "Agree")
    await r.command("maya", "next")
    goal = {
        "title": "Light the canal path",
        "outcome": "Safe after dark",
        "metric": "Working lights",
        "unit": "%",
        "baseline": "55",
        "target": "100",
        "deadline": "2027-02-28",
        "pilot": "no",
    }
    await r.form("maya", "goal", goal)
    await r.command("maya", "next")
    await r.form(
        "maya", "action 1", {"goal": "1", "title": "Survey the lamps", "owner": "", "due": "2026-12-02"}
    )
    await r.click("alice", r.channel_buttons(r":take:1$")[0])
    await r.command("maya", "close")


def dm_buttons(r: Rig, user: str) -> list[str]:
    dm = "D" + USERS[user][1:]
    return [
        action_id for msg in r.fake.messages(dm) for _, action_id in slack_seen(msg.get("blocks")).buttons
    ]


async def test_a_reminder_arrives_in_a_dm_and_a_click_there_updates_the_card(
    fake_slack: FakeSlackWebAPI, tmp_path: Path
) -> None:
    async with rig(fake_slack, tmp_path) as r:
        await closed_round_with_an_action_for_alice(r)
        clock = r.app.core.clock
        clock.advance(days=3, hours=1)  # type: ignore[attr-defined]  # "due soon": three days ahead
        await r.app.scheduler.run_once()
        await r.settle()
        opened = [c for c in r.fake.calls("conversations.open") if c.get("users") == USERS["alice"]]
        assert opened
        dm = "D" + USERS["alice"][1:]
        reminder = "\n".join(seen_text(m.get("blocks")) for m in r.fake.messages(dm))
        assert "Action 1 is due on 2026-12-02" in reminder
        done = next(a for a in dm_buttons(r, "alice") if a.endswith(":done"))

        # Bob clicks a button of Alice's reminder (a copied id): refused, privately, nothing changes.
        await r.click("bob", done, channel="D" + USERS["bob"][1:])
        assert "Only the action" in r.ephemerals_text("bob")
        # Alice clicks Done in her DM: the card in the channel is edited, the answer is private.
        await r.click("alice", done, channel=dm)
        assert "is now Done" in r.ephemerals_text("alice")
        assert any(c["channel"] == dm for c in r.ephemerals("alice"))
        updates = [c for c in r.fake.calls("chat.update") if c["channel"] == CHANNEL]
        assert "Done" in seen_text(updates[-1].blocks)
        clock.advance(days=5)  # type: ignore[attr-defined]
        await r.app.scheduler.run_once()
        await r.settle()
        assert not [m for m in r.fake.messages(dm) if "due today" in seen_text(m.get("blocks"))]
        assert all(c.ok for c in r.fake.calls() if c.method != "response_url"), [
            (c.method, c.response) for c in r.fake.calls() if not c.ok
        ]
