"""Follow-up after a round closes, as owners and conveners live it, on both databases: reminders
before and on the due date, one escalation, one-click status from a DM, the note form, muting,
check-ins, the progress post, pilot reviews, and the refusals along the way."""

from __future__ import annotations

import asyncio
import datetime as dt
import re

from sqlalchemy import delete

from bot.keys import MemoryKeyStore
from bot.persistence.tables import ActionRow
from bot.service.scheduler import DeadlineScheduler
from tests.core import followup_story as fs
from tests.harness import Harness, make_harness


async def test_owners_hear_due_soon_and_due_once_and_an_overdue_action_reaches_the_conveners_once(
    harness: Harness,
) -> None:
    h = harness
    await fs.closed_round(h)
    await fs.days(h, 20)  # to 2026-12-16: nothing for Kim's action due 12-20 yet
    assert fs.directs(h, "kim") == []
    await fs.days(h, 1)  # 12-17, three days ahead
    assert len(fs.directs(h, "kim", r"Action 2 is due on 2026-12-20\*?\*?, in 3 days")) == 1
    await fs.days(h, 3)  # 12-20, the day
    assert len(fs.directs(h, "kim", r"Action 2 is due today")) == 1
    assert fs.directs(h, "maya", "overdue") == []
    await fs.days(h, 10)
    for convener in ("maya", "ade"):  # the one who started the round, and the one who linked Discord
        assert len(fs.directs(h, convener, r"Action 2 is overdue")) == 1
    assert fs.directs(h, "kim", "overdue") == []  # escalated to conveners, not to the owner
    assert len(fs.directs(h, "kim")) == 2  # and nothing else, ever again
    # A named owner (an organisation) has no DM: the conveners are told on its behalf.
    await fs.days(h, 20)  # past Action 1's due date, 2027-01-15
    assert len(fs.directs(h, "maya", r"Action 1 is due on 2027-01-15.*owned by Parks team")) == 1


async def test_a_status_click_in_the_dm_updates_the_card_and_done_stops_the_reminders(
    harness: Harness,
) -> None:
    h = harness
    await fs.closed_round(h)
    await fs.days(h, 21)
    kim = h.driver.people["kim"]
    await h.driver.press(kim, h.driver.find_button(kim, "On track", ":st:2:on_track"), direct=True)
    assert "Action 2 (Survey every lamp post) is now On track" in h.privates("kim")[-1]
    card = [i for i in h.shown("discord") if i.kind == "edit" and "Action 2: Survey" in i.text][-1]
    assert "due 2026-12-20 · On track" in card.text  # the card is edited in place, not re-posted
    await h.driver.press(kim, h.driver.find_button(kim, "Done", ":st:2:done"), direct=True)
    assert "Reminders for it have stopped" in h.privates("kim")[-1]
    await fs.days(h, 20)
    assert len(fs.directs(h, "kim")) == 1  # "due soon" only: no "due", no escalation
    assert fs.directs(h, "maya", "Action 2 is overdue") == []
    assert await h.scalar("select status from actions where number = 2") == "done"
    assert await h.scalar("select count(*) from action_notes") == 2  # the history keeps both


async def test_the_note_form_keeps_a_note_and_moves_the_due_date_and_its_reminders(harness: Harness) -> None:
    h = harness
    await fs.closed_round(h)
    await fs.days(h, 21)
    kim = h.driver.people["kim"]
    form = await h.driver.press(kim, h.driver.find_button(kim, "Add a note", ":upd:2"), direct=True)
    assert form is not None
    assert [f.name for f in form.fields] == ["status", "note", "due"]
    await h.driver.submit(
        kim,
        form,
        {"status": "blocked", "note": "Waiting for a cherry picker", "due": "2027-01-10"},
        direct=True,
    )
    assert "now Blocked, with your note, due 2027-01-10" in h.privates("kim")[-1]
    await fs.days(h, 10)  # past the old due date: no "due today", no escalation
    assert fs.directs(h, "kim", "due today") == []
    assert fs.directs(h, "maya", "Action 2 is overdue") == []
    await fs.days(h, 11)  # 2027-01-07: due soon again, for the new date
    assert len(fs.directs(h, "kim", r"Action 2 is due on 2027-01-10")) == 1


async def test_refusals_change_nothing_and_say_why(harness: Harness) -> None:
    h = harness
    await fs.closed_round(h)
    await fs.days(h, 21)
    kim, lena, raj = h.driver.people["kim"], h.person("lena"), h.driver.people["raj"]
    on_track = h.driver.find_button(kim, "On track", ":st:2:on_track")
    # Someone who is neither the owner nor a convener.
    await h.driver.press(lena, on_track, direct=True)
    assert "Only the action's owner or a convener" in h.privates("lena")[-1]
    await h.driver.press(raj, on_track)
    assert "Only the action's owner or a convener" in h.privates("raj")[-1]
    # A due date in the past.
    form = await h.driver.press(kim, h.driver.find_button(kim, "Add a note", ":upd:2"), direct=True)
    assert form is not None
    await h.driver.submit(kim, form, {"status": "", "note": "", "due": "2026-12-01"}, direct=True)
    assert "Please choose a date after today" in h.privates("kim")[-1]
    assert await h.scalar("select status from actions where number = 2") == "not_started"
    assert str(await h.scalar("select due from actions where number = 2")) == "2026-12-20"
    assert await h.scalar("select count(*) from action_notes") == 0
    # A tampered status.
    tampered = on_track.action_id.replace("on_track", "finished")
    await h.app.core.press(h.driver.context(kim, direct=True), tampered)
    await h.driver.settle()
    assert "no longer valid" in h.privates("kim")[-1]
    # A click on a reminder for an action deleted since.
    async with h.app.sessions() as s, s.begin():
        await s.execute(delete(ActionRow).where(ActionRow.number == 2))
    await h.driver.press(kim, on_track, direct=True)
    assert "That action no longer exists" in h.privates("kim")[-1]
    assert not any("Traceback" in t for t in h.privates("kim"))


async def test_a_person_can_mute_their_reminders_and_turn_them_back_on(harness: Harness) -> None:
    h = harness
    await fs.closed_round(h)
    await fs.days(h, 21)  # Kim's "due soon" arrived
    kim = h.driver.people["kim"]
    await h.driver.press(kim, h.driver.find_button(kim, "Mute my reminders"), direct=True)
    assert "muted" in h.privates("kim")[-1]
    await fs.days(h, 3)
    assert fs.directs(h, "kim", "due today") == []
    await h.driver.command(kim, "reminders on")
    assert "are on" in h.privates("kim")[-1]
    await h.driver.command(kim, "reminders maybe")
    assert "reminders on" in h.privates("kim")[-1]


async def test_the_progress_post_is_one_message_per_channel_edited_each_week(harness: Harness) -> None:
    h = harness
    await fs.closed_round(h)
    await fs.days(h, 6)
    assert "progress (as of" not in h.public_text()
    await fs.days(h, 30)
    for platform in ("slack", "discord"):
        progress = [i for i in h.shown(platform) if ": progress (as of" in i.text]
        assert [i.kind for i in progress] == ["post", "edit", "edit", "edit", "edit"]
        assert len({i.message_id for i in progress}) == 1
        assert "week 5 of follow-up" in progress[-1].text
        assert "1 overdue" in progress[-1].text  # Kim's action, due 12-20


async def test_the_goal_owner_checks_in_the_metric_and_the_card_shows_the_progress_bar(
    harness: Harness,
) -> None:
    h = harness
    await fs.closed_round(h)
    await fs.days(h, 30)  # 12-26: a month after the close
    asks = fs.directs(h, "maya", r"What is the current value of Working lights")
    assert len(asks) == 1
    maya = h.driver.people["maya"]
    button = h.driver.find_button(maya, "Report the value", ":ci:2")
    form = await h.driver.press(maya, button, direct=True)
    assert form is not None
    await h.driver.submit(maya, form, {"value": "twelve"}, direct=True)
    assert "Please enter a number" in h.privates("maya")[-1]
    assert await h.scalar("select count(*) from goal_checkins") == 0
    await h.driver.submit(maya, form, {"value": "73", "note": "Survey half done"}, direct=True)
    assert "Working lights is 73 %" in h.privates("maya")[-1]
    card = [i for i in h.shown("slack") if "Goal 2: Light the canal path" in i.text][-1]
    assert card.kind == "edit"
    assert re.search(r"Progress: ▓{4}░{6} 40%, now 73 %", card.text)
    # Someone else cannot report the goal's value.
    lena = h.person("lena")
    await h.driver.submit(lena, form, {"value": "99"}, direct=True)
    assert "Only the goal's owner or a convener" in h.privates("lena")[-1]
    assert await h.scalar("select current from goals where number = 2") == 73


async def test_a_pilot_is_reviewed_on_its_review_date_and_the_decision_is_posted(harness: Harness) -> None:
    h = harness
    await fs.closed_round(h)
    await fs.days(h, 94)  # 2027-02-28
    assert fs.directs(h, "ade", "Pilot review") == []
    await fs.days(h, 1)  # 2027-03-01
    assert len(fs.directs(h, "maya", r"Pilot review: Goal 1")) == 1
    assert len(fs.directs(h, "ade", r"Pilot review: Goal 1")) == 1
    ade = h.driver.people["ade"]
    form = await h.driver.press(
        ade, h.driver.find_button(ade, "Record the decision", ":pilot:1"), direct=True
    )
    assert form is not None
    await h.driver.submit(ade, form, {"decision": "scale", "note": "Four schools asked to join"}, direct=True)
    assert "recorded and posted" in h.privates("ade")[-1]
    public = h.public_text()
    assert "Pilot review, Goal 1: Safe routes. Decision: Scale up." in public.replace("**", "")
    assert "Four schools asked to join" in public
    # A second decision, from the other convener's DM, changes nothing.
    maya = h.driver.people["maya"]
    await h.driver.press(maya, h.driver.find_button(maya, "Record the decision", ":pilot:1"), direct=True)
    assert "already recorded (Scale up)" in h.privates("maya")[-1]
    await fs.days(h, 10)
    assert len(fs.directs(h, "maya", "Pilot review")) == 1


async def test_actions_lists_mine_and_all_with_their_status(harness: Harness) -> None:
    h = harness
    await fs.closed_round(h)
    kim = h.driver.people["kim"]
    await h.driver.command(kim, "actions")
    mine = h.privates("kim")[-1]
    assert "Action 2 (Goal 2): Survey every lamp post, due 2026-12-20: Not started" in mine
    assert "Action 1" not in mine
    await h.driver.press(kim, h.driver.find_button(kim, "All actions"))
    every = h.privates("kim")[-1]
    assert "Action 1 (Goal 1): Map the routes, owner Parks team, due 2027-01-15: Not started" in every
    assert "Action 3 (Goal 1): Run a walking bus, owner Raj" in every
    await fs.days(h, 30)
    await h.driver.command(h.person("lena"), "actions all")
    assert "due 2026-12-20: Not started · overdue" in h.privates("lena")[-1]
    await h.driver.command(h.person("lena"), "actions")
    assert "You own no actions" in h.privates("lena")[-1]


async def test_a_restart_across_due_times_fires_each_reminder_once(engine) -> None:  # type: ignore[no-untyped-def]
    keys = MemoryKeyStore()
    first = await make_harness(engine, keys=keys)
    await fs.closed_round(first)
    await fs.days(first, 20)  # 12-16, then the process stops
    await first.app.core.ingest.aclose()
    first.clock.advance(days=2)  # down over Kim's "due soon" (12-17 09:00)

    second = await make_harness(engine, keys=keys, clock=first.clock)
    second.driver.person("kim", "discord")
    second.driver.person("maya", "slack")
    schedulers = [DeadlineScheduler(second.app.core), DeadlineScheduler(second.app.core)]
    await asyncio.gather(*(s.run_once() for s in schedulers))  # two workers at once
    await second.driver.settle()
    assert len(fs.directs(second, "kim", "in 2 days")) == 1  # fired once, late, saying so
    await fs.days(second, 10)
    assert len(fs.directs(second, "kim", "due today")) == 1
    assert len(fs.directs(second, "kim")) == 2
    assert len(fs.directs(second, "maya", "Action 2 is overdue")) == 1
    assert fs.directs(first, "kim") == []
    await second.app.core.ingest.aclose()


async def test_reminders_follow_the_rounds_time_zone(harness: Harness) -> None:
    h = harness
    await fs.closed_round(h)
    maya = h.driver.people["maya"]
    await h.driver.command(maya, "timezone Mars/Olympus")
    assert "not a time zone I know" in h.privates("maya")[-1]
    await h.driver.command(maya, "timezone America/New_York")
    assert "follows the time zone America/New_York" in h.privates("maya")[-1]
    await h.driver.command(h.driver.people["kim"], "timezone UTC")
    assert "Only a convener" in h.privates("kim")[-1]
    h.clock.current = dt.datetime(2026, 12, 17, 13, 30, tzinfo=dt.UTC)  # 08:30 in New York
    await h.app.scheduler.run_once()
    await h.driver.settle()
    assert fs.directs(h, "kim") == []
    h.clock.current = dt.datetime(2026, 12, 17, 14, 0, tzinfo=dt.UTC)  # 09:00 in New York
    await h.app.scheduler.run_once()
    await h.driver.settle()
    assert len(fs.directs(h, "kim", "in 3 days")) == 1


async def test_conveners_edit_a_goal_through_its_form_and_its_card_changes_in_place(harness: Harness) -> None:
    h = harness
    await fs.closed_round(h)
    maya, kim = h.driver.people["maya"], h.driver.people["kim"]
    await h.driver.command(kim, "editgoal 2")
    assert "Only a convener" in h.privates("kim")[-1]
    form = await h.driver.command(maya, "editgoal 2")
    assert form is not None
    values = {f.name: f.initial for f in form.fields}
    assert values["title"] == "Light the canal path"
    assert values["checkin"] == "monthly"
    await h.driver.submit(maya, form, {**values, "deadline": "2026-11-01"})
    assert "Please choose a date after today" in h.privates("maya")[-1]
    changed = {
        **values,
        "owner": "Parks team",
        "data_source": "Lamp survey",
        "checkin": "weekly",
        "target": "95",
    }
    await h.driver.submit(maya, form, changed)
    assert "Goal 2 is updated" in h.privates("maya")[-1]
    cards = [i for i in h.shown("discord") if i.text.startswith("Goal 2: Light the canal path")]
    assert cards[-1].kind == "edit"
    assert len({i.message_id for i in cards if i.kind == "edit"}) == 1
    assert "from 55 to 95 % by 2027-02-28" in cards[-1].text
    assert "Owner: Parks team" in cards[-1].text
    assert "Data: Lamp survey" in cards[-1].text
    await fs.days(h, 7)  # weekly now, and the named owner has no DM: the conveners are asked
    assert len(fs.directs(h, "ade", "current value of Working lights")) == 1


async def test_conveners_resource_an_action_and_a_renamed_owner_stops_the_old_owners_reminders(
    harness: Harness,
) -> None:
    h = harness
    await fs.closed_round(h)
    maya = h.driver.people["maya"]
    form = await h.driver.command(maya, "editaction 2")
    assert form is not None
    values = {f.name: f.initial for f in form.fields}
    assert values == {
        "title": "Survey every lamp post",
        "owner": "Kim",
        "sponsor": "",
        "resources": "",
        "due": "2026-12-20",
    }
    await h.driver.submit(
        maya,
        form,
        {**values, "owner": "Parks team", "sponsor": "Deputy mayor", "resources": "Two staff, a van"},
    )
    card = [i for i in h.shown("slack") if "Action 2: Survey" in i.text][-1]
    assert card.kind == "edit"
    assert "Owner: Parks team" in card.text
    assert "Sponsor: Deputy mayor" in card.text
    assert "Resources: Two staff, a van" in card.text
    await fs.days(h, 25)
    assert fs.directs(h, "kim") == []
    assert len(fs.directs(h, "maya", "Action 2 is due on 2026-12-20.*owned by Parks team")) == 1


async def test_a_new_round_in_the_same_channels_opens_with_since_last_round(harness: Harness) -> None:
    h = harness
    await fs.closed_round(h)
    assert "Since last round" not in h.public_text()
    await fs.days(h, 21)
    kim = h.driver.people["kim"]
    await h.driver.press(kim, h.driver.find_button(kim, "Done", ":st:2:done"), direct=True)
    await fs.days(h, 40)
    maya = h.driver.people["maya"]
    form = await h.driver.command(maya, "start")
    assert form is not None
    await h.driver.submit(maya, form, {"title": "Round two", "purpose": "Next steps"})
    slack = [i for i in h.shown("slack") if i.kind == "post"]
    recap, card = slack[-2], slack[-1]
    assert "Round two" in card.text
    assert "Since last round (Safer streets, followed up since 2026-11-26)" in recap.text
    assert "Actions: 1 done, 1 open, 1 overdue." in recap.text
    assert "✓ Action 2: Survey every lamp post (Kim)" in recap.text
    assert "⚠️ Action 1: Map the routes (Parks team), due 2027-01-15" in recap.text
    code = await h.scalar("select join_code from rounds where title = 'Round two'")
    await h.driver.command(h.driver.people["ade"], f"link {code}")
    assert "Since last round" in [i for i in h.shown("discord") if i.kind == "post"][-2].text


async def test_a_convener_cancels_an_action_and_its_reminders_stop_but_an_owner_cannot(
    harness: Harness,
) -> None:
    h = harness
    await fs.closed_round(h)
    kim, maya = h.driver.people["kim"], h.driver.people["maya"]
    form = await h.driver.command(kim, "update 2")
    assert form is not None
    assert "cancelled" not in [o.value for o in form.fields[0].options]  # not offered to an owner
    await h.driver.submit(kim, form, {"status": "cancelled", "note": "", "due": ""})
    assert "Only a convener" in h.privates("kim")[-1]
    form = await h.driver.command(maya, "update 2")
    assert form is not None
    await h.driver.submit(
        maya, form, {"status": "cancelled", "note": "Done by the council's contractor", "due": ""}
    )
    assert "now Cancelled, with your note" in h.privates("maya")[-1]
    await fs.days(h, 30)
    assert fs.directs(h, "kim") == []
    assert fs.directs(h, "maya", "Action 2") == []
    await h.driver.command(h.person("lena"), "update 9")
    assert "That action no longer exists" in h.privates("lena")[-1]
