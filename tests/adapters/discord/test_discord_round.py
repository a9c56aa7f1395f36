"""A whole round played by several Discord users through an unmodified discord.py client."""

from __future__ import annotations

import re
from pathlib import Path

from tests.adapters.discord.rig import NAMES, NONE, Rig, make_rig
from tests.platform_fakes import discord_payloads as p


def _ids(rig: Rig, verb: str) -> list[str]:
    out = []
    for m in rig.public():
        out += [c for c in rig.buttons(m) if c.split(":")[2:3] == [verb]]
    return out


async def _start(rig: Rig, title: str = "Cleaner river") -> str:
    rec = await rig.slash("owner", "start")
    modal = await rig.modal(rec)
    assert modal["custom_id"] == "cv:-:form:start"
    # Labels (type 18) around text inputs and a select, never bare action rows.
    assert {c["type"] for c in modal["components"]} == {18}
    assert any(c["component"]["type"] == 3 for c in modal["components"])
    sub = await rig.submit(
        "owner",
        "cv:-:form:start",
        {
            "title": title,
            "purpose": "Less litter, more life",
            "template": ["standard"],
            "contribute_minutes": "",
            "vote_minutes": "",
        },
    )
    assert (await sub.callback())["type"] == 5  # deferred, ephemeral "thinking"
    text = await rig.reply(sub)
    code = re.search(r"\b[A-Z2-9]{8}\b", text)
    assert code, text
    card = await rig.wait_public(lambda m: any(":join" in c for c in rig.buttons(m)))
    return str(card["components"][0]["components"][0]["custom_id"]).split(":")[1]


async def test_whole_round_three_participants(tmp_path: Path, handled_by: dict[str, str]) -> None:
    async with make_rig(tmp_path) as rig, rig.running():
        rid = await _start(rig)
        join = f"cv:{rid}:join"
        for who, sector in (("alice", "business"), ("bob", "resident"), ("carol", "academia")):
            rec = await rig.click(who, join)
            modal = await rig.modal(rec)
            assert modal["custom_id"] == f"cv:{rid}:form:join"
            assert modal["components"][0]["type"] == 10  # the charter, shown above the choice
            sub = await rig.submit(who, f"cv:{rid}:form:join", {"sector": [sector]})
            await rig.reply(sub)
        ideas = {
            "alice": "Plant reeds along the bank",
            "bob": "Monthly clean-up walks",
            "carol": "Bins at every bridge",
        }
        for who, idea in ideas.items():
            rec = await rig.click(who, f"cv:{rid}:contribute")
            modal = await rig.modal(rec)
            sub = await rig.submit(who, modal["custom_id"], {"text": idea})
            await rig.reply(sub)
        # `/convene mine` exists on Discord as on Slack: one's own ideas, privately.
        mine = await rig.slash("alice", "mine")
        text = await rig.reply(mine)
        assert "Plant reeds along the bank" in text
        assert "Monthly clean-up walks" not in text

        # Only the convener moves the round on.
        nxt = await rig.slash("owner", "next")
        await rig.confirmed(nxt, "Cleaner river", "vote")
        release = await rig.wait_public(lambda m: f"cv:{rid}:deck" in rig.buttons(m))
        # A compact numbered list and one "Vote" button: no per-idea buttons to misplace.
        assert rig.buttons(release) == [f"cv:{rid}:deck"]
        assert all(f"**Idea {n}** ·" in release["content"] for n in (1, 2, 3))
        assert not _ids(rig, "v")
        for who in ("alice", "bob", "carol"):
            card = await rig.open_deck(who, rid)
            for n in range(3 if who != "carol" else 1):
                assert f"{n} of 3 voted" in card["content"]
                rec = await rig.press(who, "Agree")
                assert rec.response is not None
                assert rec.response["type"] == 7  # the card is updated in place, as the first response
                card = rig.card(who) or {}
                assert card["flags"] & p.FLAG_EPHEMERAL
                assert card["id"] == rig.decks[who]
            assert ("voted on every idea" in card["content"]) == (who != "carol")
        # Maya has not joined: asked to, privately, on the card itself.
        card = await rig.open_deck("maya", rid)
        assert "Please join" in card["content"]
        assert await rig.scalar("select count(*) from ballots") == 7

        nxt = await rig.slash("maya", "next")  # a convener by role
        await rig.confirmed(nxt, "Cleaner river", "goals")
        await rig.wait_public(lambda m: any(":goal:" in c for c in rig.buttons(m)))

        # The goal form has ten fields: two modals chained by a private "continue" button.
        make_goal = _ids(rig, "goal")[0]
        rec = await rig.click("owner", make_goal)
        page1 = await rig.modal(rec)
        assert page1["custom_id"].startswith("cvp:1:cv:")
        assert len(page1["components"]) == 5
        first = {
            "idea": make_goal.split(":")[3],
            "title": "Reeds on 2 km of bank",
            "outcome": "A living bank",
            "metric": "Bank planted",
            "unit": "km",
        }
        sub1 = await rig.submit("owner", page1["custom_id"], first)
        body = await sub1.callback()
        assert body["type"] == 4
        assert body["data"]["flags"] & p.FLAG_EPHEMERAL
        cont = body["data"]["components"][0]["components"][0]["custom_id"]
        assert cont.startswith("cvp:2:")
        rec = await rig.click("owner", cont)
        page2 = await rig.modal(rec)
        assert handled_by[cont] == "ContinueButton"
        assert len(page2["components"]) == 5
        second = {"baseline": "0", "target": "2", "deadline": "2027-06-30", "pilot": "no", "review_date": ""}
        sub2 = await rig.submit("owner", page2["custom_id"], second)
        await rig.reply(sub2)
        await rig.wait_public(lambda m: "Reeds on 2 km of bank" in m["content"])

        nxt = await rig.slash("owner", "next")
        await rig.confirmed(nxt, "Cleaner river", "actions")
        rec = await rig.slash("owner", "action", {"goal": 1})
        modal = await rig.modal(rec)
        sub = await rig.submit(
            "owner",
            modal["custom_id"],
            {"goal": "1", "title": "Order reed plugs", "owner": "", "due": "2027-01-15"},
        )
        await rig.reply(sub)
        card = await rig.wait_public(lambda m: any(":take:" in c for c in rig.buttons(m)))
        take = rig.buttons(card)[0]
        rec = await rig.click("alice", take)
        assert "Order reed plugs" in await rig.reply(rec)
        # Every click of the round was decoded by a DynamicItem callback.
        assert set(handled_by.values()) == {"RoundButton", "ContinueButton"}
        # The action card is edited in place: alice is named as its owner, the button is gone.
        await rig.fake.wait_until(
            lambda: (
                "Alice" in (rig.fake.messages[card["id"]]["content"])
                and not rig.fake.messages[card["id"]]["components"]
            ),
            5,
            "the action card updated",
        )

        close = await rig.slash("owner", "close")
        await rig.confirmed(close, "Cleaner river", "closed")
        await rig.wait_public(lambda m: "Order reed plugs" in m["content"] and "Reeds" in m["content"])

        # Nothing public names a participant (only the action owner, who volunteered).
        public_text = "\n".join(m["content"] for m in rig.public())
        for who in ("bob", "carol", "maya", "owner"):
            assert NAMES[who].lower() not in public_text.lower()
            assert rig.users[who]["id"] not in public_text
        assert rig.users["alice"]["id"] not in public_text
        # Every private reply went to its own interaction as an ephemeral follow-up or response.
        for rec in rig.fake.interactions.values():
            for msg in rec.followups:
                assert msg["flags"] & p.FLAG_EPHEMERAL
        for _call, body in rig.fake.sent_messages():
            assert body.get("allowed_mentions") == NONE, body
        assert not rig.fake.pings()


async def test_vote_close_posts_the_consensus_chart(tmp_path: Path) -> None:
    async with make_rig(tmp_path) as rig, rig.running():
        rid = await rig.start_round()
        for who in ("alice", "bob"):
            await rig.join(who, rid, "business" if who == "alice" else "resident")
        await rig.contribute("alice", rid, "Plant reeds")
        await rig.contribute("bob", rid, "Monthly clean-up walks")
        await rig.confirmed(await rig.slash("owner", "next"), "Cleaner river", "vote")
        await rig.wait_public(lambda m: f"cv:{rid}:deck" in rig.buttons(m))
        for who in ("alice", "bob"):
            await rig.open_deck(who, rid)
            for _ in range(2):
                await rig.press(who, "Agree")
        await rig.confirmed(await rig.slash("owner", "next"), "Cleaner river", "goals")
        chart = await rig.wait_public(lambda m: m["attachments"])
        assert chart["content"] == rig.app.core.prompts.render("goals/chart", {})
        [attachment] = chart["attachments"]
        assert attachment["filename"] == "consensus.png"
        [png] = rig.fake.attachment_data(chart)
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert attachment["size"] == len(png)
        [upload] = [c for c in rig.fake.calls_to("POST /channels/{channel_id}/messages") if c.files]
        assert upload.response["id"] == chart["id"]
        assert upload.json["allowed_mentions"] == NONE
        assert [(f["name"], f["data"]) for f in upload.files] == [("files[0]", png)]
        # Posted once, after the results (their "make this a goal" buttons) and before "goals are open".
        opened = rig.app.core.prompts.render("goals/open", {"title": "Cleaner river"}, rig.port.escape)
        await rig.wait_public(lambda m: m["content"] == opened)
        public = rig.public()
        assert [m["id"] for m in public if m["attachments"]] == [chart["id"]]
        at = public.index(chart)
        assert any(":goal:" in c for m in public[:at] for c in rig.buttons(m))
        assert [m["content"] for m in public[at + 1 :]] == [opened]
        assert not rig.fake.pings()
