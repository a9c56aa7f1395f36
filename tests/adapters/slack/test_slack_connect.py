"""C5 (tenancy): no round is started in, or linked to, a channel shared with another organisation
(Slack Connect). The adapter tells the core what it knows of the channel; the core refuses."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import text

from tests.adapters.slack.rig import CHANNEL, Rig, rig
from tests.platform_fakes.slack import FakeSlackWebAPI

OWN = "C0OWNONLY"


async def _count(r: Rig, sql: str) -> int:
    async with r.app.engine.connect() as conn:
        return int((await conn.execute(text(sql))).scalar() or 0)


async def test_C5_a_round_is_not_started_or_linked_in_a_slack_connect_channel(
    fake_slack: FakeSlackWebAPI, tmp_path: Path
) -> None:
    fake_slack.ext_shared_channels.add(CHANNEL)
    async with rig(fake_slack, tmp_path) as r:
        # Starting in the shared channel: a private refusal, no form, nothing stored or posted.
        await r.command("maya", "start")
        assert not fake_slack.calls("views.open")
        assert "shared with another organisation" in r.ephemerals_text("maya")
        assert fake_slack.calls("conversations.info")[-1]["channel"] == CHANNEL
        assert not fake_slack.calls("chat.postMessage")
        assert await _count(r, "select count(*) from rounds") == 0

        # A round in a channel of the workspace's own is fine...
        await r.command("maya", "start", channel=OWN)
        view = r.last_view()
        await r.submit("maya", view, {"title": "Safer streets", "purpose": "Goals", "template": "standard"})
        assert await _count(r, "select count(*) from rounds") == 1
        code = re.findall(r"\b[A-Z2-9]{8}\b", r.ephemerals_text("maya"))[-1]

        # ...but it is not linked to the shared channel.
        before = len(r.ephemerals("maya"))
        await r.command("maya", f"link {code}")
        refusal = r.ephemerals("maya")[before:]
        assert len(refusal) == 1
        assert "shared with another organisation" in str(refusal[0].blocks)
        linked = await _count(r, f"select count(*) from round_conversations where channel_id = '{CHANNEL}'")
        assert linked == 0
        assert all(c["channel"] == OWN for c in fake_slack.calls("chat.postMessage"))


async def test_C5_when_slack_cannot_say_whether_a_channel_is_shared_no_round_starts(
    fake_slack: FakeSlackWebAPI, tmp_path: Path
) -> None:
    fake_slack.fail_next("conversations.info", error="missing_scope")
    async with rig(fake_slack, tmp_path) as r:
        await r.command("maya", "start")
        assert not fake_slack.calls("views.open")
        assert "could not check whether this channel is shared" in r.ephemerals_text("maya")
        # The failure is not remembered: once Slack answers, the form opens.
        await r.command("maya", "start")
        assert len(fake_slack.calls("views.open")) == 1
        # The answer is remembered: the submission does not ask again.
        asked = len(fake_slack.calls("conversations.info"))
        await r.submit("maya", r.last_view(), {"title": "Safer", "purpose": "Goals", "template": "standard"})
        assert len(fake_slack.calls("conversations.info")) == asked
        assert await _count(r, "select count(*) from rounds") == 1
