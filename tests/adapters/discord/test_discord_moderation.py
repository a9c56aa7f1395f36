"""Moderation without unmasking (B7) on Discord, through an unmodified discord.py client and the fake
Discord: `/convene review` answers the convener with an ephemeral message (text only), Reject opens
a modal for the reason, the author alone gets it in a DM, and `/convene remove N` edits the release
post in place (PATCH of the channel message), never a new post."""

from __future__ import annotations

import re
from pathlib import Path

from tests.adapters.discord.rig import make_rig
from tests.platform_fakes import discord_payloads as p
from tests.platform_fakes.markup import discord_reading as _reading

SLUR = "People from the estate are vermin"
GOOD = "Plant reeds along the bank"
OTHER = "Bins at every bridge"


def discord_reading(content: str) -> str:
    """What a person reads in a Discord message."""
    return _reading(content)[0]


PREMODERATED = {"templates": {"standard": {"premoderation": True}}}


async def test_B7_discord_review_reject_and_remove_through_real_payloads(tmp_path: Path) -> None:
    async with make_rig(tmp_path, rounds=PREMODERATED) as rig, rig.running():
        rid = await rig.start_round()
        for who in ("alice", "bob", "carol"):
            await rig.join(who, rid)
        recorded = await rig.contribute("bob", rid, SLUR)
        assert "review each idea" in discord_reading(recorded)
        await rig.contribute("alice", rid, GOOD)
        await rig.contribute("carol", rid, OTHER)

        refused = await rig.slash("alice", "review")
        assert "Only a convener" in discord_reading(await rig.reply(refused))

        async def review() -> tuple[str, dict[str, str]]:
            rec = await rig.slash("owner", "review")
            text = discord_reading(await rig.reply(rec))
            message = rec.followups[0]
            assert message["flags"] & p.FLAG_EPHEMERAL
            buttons = {c["label"]: c["custom_id"] for row in message["components"] for c in row["components"]}
            return text, buttons

        def number_of(text: str, idea: str) -> str:
            return re.findall(r"#(\d)", text[: text.index(idea)])[-1]

        text, buttons = await review()
        assert SLUR in text
        for name in ("bob", "Bob", str(rig.users["bob"]["id"])):
            assert name not in text
        rec = await rig.click("owner", buttons[f"Reject #{number_of(text, SLUR)}"])
        modal = await rig.modal(rec)
        sub = await rig.submit("owner", modal["custom_id"], {"reason": "Insults a group of residents"})
        assert "author is told your reason privately" in discord_reading(await rig.reply(sub))
        await rig.settle()
        bob = str(rig.users["bob"]["id"])
        told = [m["content"] for m in rig.fake.channel_messages(rig.fake._dm_by_user[bob])]
        assert len(told) == 1
        assert "Insults a group of residents" in discord_reading(told[0])
        assert SLUR not in discord_reading(told[0])
        assert set(rig.fake._dm_by_user) == {bob}  # nobody else was sent a DM

        for ok in (GOOD, OTHER):
            text, buttons = await review()
            rec = await rig.click("owner", buttons[f"Approve #{number_of(text, ok)}"])
            await rig.reply(rec)

        await rig.confirmed(await rig.slash("owner", "next"), "Cleaner river", "vote")
        release = await rig.wait_public(lambda m: f"cv:{rid}:deck" in rig.buttons(m))
        shown = discord_reading(release["content"])
        assert SLUR not in shown
        n = re.search(r"Idea (\d+)\** · " + re.escape(GOOD), shown)
        assert n is not None, shown
        posts = len(rig.public())
        rec = await rig.slash("owner", "remove", {"idea": int(n.group(1))})
        assert f"Idea {n.group(1)} is removed" in discord_reading(await rig.reply(rec))
        await rig.settle()
        edited = rig.fake.messages[release["id"]]
        now = discord_reading(edited["content"])
        assert re.search(rf"Idea {n.group(1)}\** · removed by the conveners", now)
        assert GOOD not in now
        assert OTHER in now
        assert len(rig.public()) == posts  # the release post edited in place, no new post
        patches = [
            c for c in rig.fake.calls if c.method == "PATCH" and c.path.endswith(f"/messages/{release['id']}")
        ]
        assert patches
