"""Follow-up on Discord, through an unmodified discord.py client and the fake Discord: a reminder
reaches the owner in a DM (POST /users/@me/channels), and a click on its status button there (an
interaction with no guild) is answered privately and edits the action's card in the channel."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from bot.domain.commands import Context
from bot.refs import ConversationRef, Platform, UserRef
from bot.service.textcmd import run_text
from tests.adapters.discord.rig import NAMES, Rig, make_rig
from tests.platform_fakes.markup import discord_reading

_requests = itertools.count(1)


def ctx(rig: Rig, who: str) -> Context:
    """What the adapter builds for ``who`` in #general (the round's setup is not under test here)."""
    guild, channel = str(rig.channel["guild_id"]), str(rig.channel["id"])
    return Context(
        actor=UserRef(Platform.DISCORD, guild, str(rig.users[who]["id"]), NAMES[who]),
        where=ConversationRef(Platform.DISCORD, guild, channel),
        request_id=f"test:{next(_requests)}",
        is_convener=who == "owner",
    )


async def form(rig: Rig, who: str, text: str, values: dict[str, Any]) -> None:
    opened = await run_text(rig.app.core, ctx(rig, who), text)
    assert opened is not None, text
    await rig.app.core.submit_form(ctx(rig, who), opened.form_id, values)


async def closed_round(rig: Rig) -> None:
    core = rig.app.core
    await form(rig, "owner", "start", {"title": "Cleaner river", "purpose": "Less litter"})
    for who in ("alice", "bob"):
        await form(rig, who, "join", {"sector": "resident"})
    await form(rig, "alice", "contribute", {"text": "Reeds along the bank"})
    await run_text(core, ctx(rig, "owner"), "next")
    await run_text(core, ctx(rig, "owner"), "next")
    goal = {
        "title": "Reeds on 2 km of bank",
        "outcome": "A living bank",
        "metric": "Bank planted",
        "unit": "km",
        "baseline": "0",
        "target": "2",
        "deadline": "2027-06-30",
        "pilot": "no",
    }
    await form(rig, "owner", "goal", goal)
    await run_text(core, ctx(rig, "owner"), "next")
    await form(
        rig, "owner", "action 1", {"goal": "1", "title": "Order reed plugs", "owner": "", "due": "2026-12-02"}
    )
    await core.press(ctx(rig, "alice"), f"cv:{await rig.scalar('select id from rounds')}:take:1")
    await run_text(core, ctx(rig, "owner"), "close")
    await rig.settle()


async def test_a_reminder_arrives_in_a_dm_and_a_click_there_edits_the_card(tmp_path: Path) -> None:
    async with make_rig(tmp_path) as rig, rig.running():
        await closed_round(rig)
        rig.app.core.clock.advance(days=3, hours=1)  # type: ignore[attr-defined]  # three days ahead
        await rig.app.scheduler.run_once()
        await rig.settle()
        alice = str(rig.users["alice"]["id"])
        dm = rig.fake._dm_by_user[alice]
        # (The setup's replies came here too: its contexts carry no interaction token.)
        [reminder] = [m for m in rig.fake.channel_messages(dm) if "Action 1 is due on" in m["content"]]
        assert "due on 2026-12-02**, in 3 days" in discord_reading(reminder["content"])[0]  # as shown
        done = next(c for c in rig.buttons(reminder) if c.endswith(":done"))

        rec = await rig.click("alice", done)  # from the DM: no guild, no member
        assert rec.payload.get("guild_id") is None
        reply = await rig.reply(rec)
        assert "is now" in reply
        assert "Done" in reply
        card = await rig.fake.wait_until(
            lambda: next(
                (
                    m
                    for m in rig.public()
                    if "Order reed plugs" in m["content"]
                    and "Done" in m["content"]
                    and m.get("edited_timestamp")
                ),
                None,
            ),
            5,
            "the action card, edited",
        )
        assert "Alice" in card["content"]
        rec = await rig.click("bob", done)  # a copied button, clicked by someone else
        assert "Only the action" in await rig.reply(rec)
