"""A whole round played by Slack users through real signed requests, bolt and the fake Web API."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

from tests.adapters.slack.rig import CHANNEL, USERS, card_text, rig
from tests.platform_fakes.slack import FakeSlackWebAPI

IDEAS = {
    "alice": "Safe routes to school for every primary school",
    "bob": "Light the canal path after dark",
    "carol": "Weekly repair café in the library",
}


async def test_whole_round(fake_slack: FakeSlackWebAPI, tmp_path: Path) -> None:
    async with rig(fake_slack, tmp_path) as r:
        await r.form(
            "maya",
            "start",
            {"title": "Safer streets", "purpose": "Agree common goals", "template": "standard"},
        )
        assert "Safer streets" in r.public_text()
        assert r.ephemerals("maya"), "the join code goes to the convener privately"

        for who in ("alice", "bob", "carol"):
            await r.form(who, "join", {"sector": "resident"})
        for who, text in IDEAS.items():
            await r.form(who, "contribute", {"text": text})
        assert not any(t in r.public_text() for t in IDEAS.values()), "ideas stay hidden until released"

        await r.command("maya", "next")
        text = r.public_text()
        assert all(t in text for t in IDEAS.values())
        assert len(r.channel_buttons(r":deck$")) >= 1  # one "Vote" button, no per-idea buttons
        assert not r.channel_buttons(r":v:")
        for who in ("alice", "bob", "carol"):
            await r.open_deck(who)
            for _ in range(3):
                await r.press(who, "Agree")
            assert "voted on every idea" in card_text(r.card(who) or {})

        await r.command("maya", "next")
        if importlib.util.find_spec("matplotlib") is not None:  # the charts extra
            [chart] = r.fake.files(CHANNEL)  # vote close: the consensus chart, as a PNG in the channel
            assert chart.data is not None
            assert chart.data.startswith(b"\x89PNG")
        make_goal = r.channel_buttons(r":goal:\d+$")
        assert make_goal
        await r.click("maya", make_goal[0])
        view = r.last_view()
        assert len(view["title"]["text"]) <= 24
        goal = {
            "idea": "1",
            "title": "Safe routes",
            "outcome": "Children walk safely",
            "metric": "Schools with a route",
            "unit": "schools",
            "baseline": "4",
            "target": "32",
            "deadline": "2027-09-01",
            "pilot": "no",
        }
        resp = await r.submit("maya", view, goal)
        assert resp.status == 200
        assert resp.body == b""

        await r.command("maya", "next")
        await r.form(
            "maya", "action 1", {"goal": "1", "title": "Map the routes", "owner": "", "due": "2027-01-31"}
        )
        take = r.channel_buttons(r":take:1$")
        assert take
        await r.click("alice", take[0])
        assert "alice" in r.public_text()  # the volunteer's display name on the action card

        await r.command("maya", "close")
        final = r.public_text()
        assert "Safe routes" in final
        assert "Map the routes" in final
        payloads = json.dumps(r.public_blocks())  # button ids too: every client receives them
        for uid in USERS.values():
            assert uid not in payloads, "no user id in anything posted to the channel"
        for call in r.fake.calls("chat.postMessage"):
            assert call["channel"] == CHANNEL
            assert call.get("unfurl_links") is False
            assert call.get("unfurl_media") is False
        eph = r.fake.calls("chat.postEphemeral")
        assert eph
        assert all(c["channel"] == CHANNEL for c in eph)
        # Each person's ephemerals answered their own requests: the join code only to maya.
        code = re.search(r"\b[A-Z2-9]{8}\b", r.ephemerals_text("maya"))
        assert code is not None
        for who in ("alice", "bob", "carol"):
            assert code.group(0) not in r.ephemerals_text(who)
            assert r.ephemerals(who)
        # Nothing failed on the way: every Web API call was accepted by the fake.
        assert all(c.ok for c in r.fake.calls() if c.method != "response_url"), [
            (c.method, c.response) for c in r.fake.calls() if not c.ok
        ]
        assert all(len(c.blocks) <= 50 for c in r.fake.calls("chat.postMessage"))
