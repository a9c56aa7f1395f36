"""Moderation without unmasking (B7) on Slack, through real signed requests, bolt and the fake Web
API: `/convene review` answers the convener privately with the text only, Reject opens a modal for
the reason, the author alone gets it in a DM, and `/convene remove N` edits the release post in
place (chat.update), never a new post."""

from __future__ import annotations

import re
from pathlib import Path

from bot.config import RoundsConfig, TemplateConfig
from tests.adapters.slack.rig import CHANNEL, USERS, rig, seen_text
from tests.platform_fakes.markup import slack_seen
from tests.platform_fakes.slack import FakeSlackWebAPI

SLUR = "People from the estate are vermin"
GOOD = "Light the canal path after dark"
PREMODERATED = RoundsConfig(templates={"standard": TemplateConfig(premoderation=True)})


async def test_B7_slack_review_reject_and_remove_through_real_payloads(
    fake_slack: FakeSlackWebAPI, tmp_path: Path
) -> None:
    async with rig(fake_slack, tmp_path, rounds=PREMODERATED) as r:
        await r.form(
            "maya", "start", {"title": "Safer streets", "purpose": "Agree goals", "template": "standard"}
        )
        for who in ("alice", "bob", "carol"):
            await r.form(who, "join", {"sector": "resident"})
        await r.form("bob", "contribute", {"text": SLUR})
        await r.form("alice", "contribute", {"text": GOOD})
        await r.form("carol", "contribute", {"text": "Weekly repair café in the library"})
        assert SLUR not in r.public_text()

        await r.command("alice", "review")
        assert "Only a convener" in r.ephemerals_text("alice")
        await r.command("maya", "review")
        listing = r.ephemerals("maya")[-1]
        text = seen_text(listing.blocks)
        assert SLUR in text
        for uid, name in ((USERS["bob"], "bob"), (USERS["alice"], "alice")):
            assert uid not in str(listing.blocks)
            assert name not in text
        buttons = slack_seen(listing.blocks).action_ids

        def number_of(idea: str) -> str:
            return re.findall(r"#(\d)", text[: text.index(idea)])[-1]

        await r.click("maya", buttons[f"Reject #{number_of(SLUR)}"])
        view = r.last_view()
        assert SLUR in str(view["blocks"])
        resp = await r.submit("maya", view, {"reason": ""})
        assert b"errors" in resp.body  # the reason is required: an error inside the modal
        resp = await r.submit("maya", view, {"reason": "Insults a group of residents"})
        assert resp.status == 200
        # The author alone gets the reason, in a DM; nobody else is sent anything.
        bob_dm = "D" + USERS["bob"][1:]
        told = [seen_text(m.get("blocks")) for m in r.fake.messages(bob_dm)]
        assert len(told) == 1
        assert "Insults a group of residents" in told[0]
        assert SLUR not in told[0]
        for other in ("alice", "carol", "maya"):
            assert not r.fake.messages("D" + USERS[other][1:])
        for ok in (GOOD, "Weekly repair café in the library"):
            await r.command("maya", "review")
            listing = r.ephemerals("maya")[-1]
            text = seen_text(listing.blocks)
            await r.click("maya", slack_seen(listing.blocks).action_ids[f"Approve #{number_of(ok)}"])

        await r.command("maya", "next")
        assert GOOD in r.public_text()
        assert SLUR not in r.public_text()
        release = next(m for m in r.fake.messages(CHANNEL) if GOOD in seen_text(m.get("blocks")))
        n = re.search(r"Idea (\d+) · " + re.escape(GOOD), seen_text(release.get("blocks")))
        assert n is not None
        posts = len(r.fake.calls("chat.postMessage"))
        updates = len(r.fake.calls("chat.update"))
        await r.command("maya", f"remove {n.group(1)}")
        assert f"Idea {n.group(1)} is removed" in r.ephemerals_text("maya")
        assert len(r.fake.calls("chat.postMessage")) == posts  # no new post
        [edit] = r.fake.calls("chat.update")[updates:]
        assert edit["ts"] == release["ts"]  # the release post itself, edited in place
        now = seen_text(edit.blocks)
        assert f"Idea {n.group(1)} · removed by the conveners" in now
        assert GOOD not in now
        assert "Weekly repair café in the library" in now
