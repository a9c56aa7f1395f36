"""Images through the Slack port: files.getUploadURLExternal -> bytes -> chat.postMessage ->
files.completeUploadExternal, against the fake Slack; the consensus chart at vote close; failures."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from adapters.slack.port import SlackChatPort, make_client
from bot.messages import Attachment, Block, Button, Rendered
from bot.persistence.tables import OutboxRow
from bot.ports import DeliveryError
from bot.refs import ConversationRef, Platform
from tests.adapters.slack.rig import CHANNEL, Rig, rig
from tests.platform_fakes.slack import FakeSlackWebAPI

TO = ConversationRef(Platform.SLACK, "T0CONVENE", CHANNEL)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
CHART = Rendered(
    (Block("**Ideas** by urgency and impact: green marks common ground."),), Attachment("consensus.png", PNG)
)
IMAGE_FLOW = ["files.getUploadURLExternal", "file_upload", "chat.postMessage", "files.completeUploadExternal"]


@pytest.fixture
async def port(fake_slack: FakeSlackWebAPI) -> AsyncIterator[SlackChatPort]:
    port = SlackChatPort(make_client(fake_slack.bot_token, fake_slack.base_url))
    yield port
    await port.aclose()


async def test_image_post_shares_the_png_below_its_text(
    fake_slack: FakeSlackWebAPI, port: SlackChatPort
) -> None:
    ts = await port.post(TO, CHART)
    assert fake_slack.methods() == IMAGE_FLOW
    assert all(c.ok for c in fake_slack.calls()), [(c.method, c.response) for c in fake_slack.calls()]
    # The message id is the text message's ts (completeUploadExternal gives none).
    assert fake_slack.calls("chat.postMessage")[0].response["ts"] == ts
    [shared] = fake_slack.files(CHANNEL)
    assert shared.data == PNG
    assert shared.filename == "consensus.png"
    assert shared.alt_txt == "Ideas by urgency and impact: green marks common ground."
    text, file_share = fake_slack.messages(CHANNEL)
    assert text["ts"] == ts
    [section] = text["blocks"][0]["elements"]
    assert section["elements"][0] == {"type": "text", "text": "Ideas", "style": {"bold": True}}
    assert file_share["files"][0]["id"] == shared.id
    assert file_share["ts"] > ts  # the picture right below its text
    # The bytes went to the upload URL without the bot token.
    upload = fake_slack.calls("file_upload")[0]
    assert "Authorization" not in upload.headers
    assert upload.raw_body == PNG
    # Editing rewrites the text; the shared picture stays.
    await port.edit(TO, ts, Rendered((Block("Updated text"),), CHART.image))
    assert fake_slack.calls("chat.update")[-1].ok
    assert fake_slack.messages(CHANNEL)[0]["text"] == "Updated text"
    assert len(fake_slack.files()) == 1
    assert not fake_slack.pending_files()


async def test_image_with_buttons_and_in_direct_messages(
    fake_slack: FakeSlackWebAPI, port: SlackChatPort
) -> None:
    with_button = Rendered((Block("Chart", (Button("cv:r:x", "More"),)),), Attachment("c.png", PNG))
    await port.post(TO, with_button)
    assert fake_slack.calls("chat.postMessage")[0].blocks[-1]["type"] == "actions"
    ts = await port.send_direct("T0CONVENE", "U0ALICE", CHART)
    [dm_file] = fake_slack.files("D0ALICE")
    assert dm_file.data == PNG
    assert fake_slack.messages("D0ALICE")[0]["ts"] == ts


async def test_private_reply_leaves_the_image_out(fake_slack: FakeSlackWebAPI, port: SlackChatPort) -> None:
    await port.post_private(TO, "U0ALICE", CHART, None)
    assert fake_slack.methods() == ["chat.postEphemeral"]
    assert not fake_slack.files()


@pytest.mark.parametrize(
    ("method", "fault"),
    [
        ("file_upload", {"status": 403}),
        ("file_upload", {"status": 401}),
        ("files.getUploadURLExternal", {"error": "missing_scope"}),  # no files:write
        ("files.getUploadURLExternal", {"error": "file_uploads_disabled"}),
    ],
)
async def test_upload_failures_are_permanent_and_show_nothing(
    fake_slack: FakeSlackWebAPI, port: SlackChatPort, method: str, fault: dict[str, Any]
) -> None:
    fake_slack.fail_next(method, **fault)
    with pytest.raises(DeliveryError) as err:
        await port.post(TO, CHART)
    assert err.value.permanent, err.value.reason
    assert len(fake_slack.calls(method)) == 1  # no retry of a permanent error
    # Failures before the text went out leave the channel untouched (the relay then sends the text).
    assert not fake_slack.calls("chat.postMessage")
    assert not fake_slack.files()


@pytest.mark.parametrize("fault", [{"error": "not_in_channel"}, {"status": 403}, {"retry_after": 30}])
async def test_a_refused_share_leaves_the_text_alone_and_is_not_an_error(
    fake_slack: FakeSlackWebAPI, port: SlackChatPort, fault: dict[str, Any]
) -> None:
    fake_slack.fail_next("files.completeUploadExternal", **fault)
    ts = await port.post(TO, CHART)  # the text is shown: raising would make the relay post it again
    [text] = fake_slack.messages(CHANNEL)
    assert text["ts"] == ts
    assert not fake_slack.files(CHANNEL)
    assert len(fake_slack.calls("chat.postMessage")) == 1


async def test_not_in_channel_from_the_share_itself(fake_slack: FakeSlackWebAPI, port: SlackChatPort) -> None:
    """Not injected: the fake refuses to share a file where the bot is not a member."""
    fake_slack.member_channels = {"C0OTHER"}
    ts = await port.post(TO, CHART)
    assert fake_slack.calls("files.completeUploadExternal")[0].error == "not_in_channel"
    assert [m["ts"] for m in fake_slack.messages(CHANNEL)] == [ts]


async def test_429_on_the_upload_is_honoured(fake_slack: FakeSlackWebAPI, port: SlackChatPort) -> None:
    fake_slack.fail_next("file_upload", retry_after=1)
    started = time.monotonic()
    await port.post(TO, CHART)
    uploads = fake_slack.calls("file_upload")
    assert [c.status for c in uploads] == [429, 200]
    assert uploads[1].at - uploads[0].at >= 0.9
    assert time.monotonic() - started >= 0.9
    assert fake_slack.files(CHANNEL)[0].data == PNG
    # A long Retry-After goes back to the outbox, before anything was shown.
    fake_slack.reset()
    fake_slack.fail_next("file_upload", retry_after=30)
    with pytest.raises(DeliveryError) as err:
        await port.post(TO, CHART)
    assert (err.value.retry_after, err.value.permanent) == (30, False)
    assert not fake_slack.calls("chat.postMessage")
    # An expired upload URL (404) or a 5xx: retried later with a fresh URL.
    for status in (404, 503):
        fake_slack.fail_next("file_upload", status=status)
        with pytest.raises(DeliveryError) as err:
            await port.post(TO, CHART)
        assert not err.value.permanent, status


async def test_429_on_the_api_steps(fake_slack: FakeSlackWebAPI, port: SlackChatPort) -> None:
    fake_slack.fail_next("files.getUploadURLExternal", retry_after=1)
    fake_slack.fail_next("files.completeUploadExternal", retry_after=1)
    await port.post(TO, CHART)  # both waited out inline
    assert [c.status for c in fake_slack.calls("files.completeUploadExternal")] == [429, 200]
    assert len(fake_slack.calls("chat.postMessage")) == 1
    assert len(fake_slack.files(CHANNEL)) == 1


# --- the consensus chart at vote close, through the relay ---------------------------------------


async def to_vote_close(r: Rig) -> None:
    await r.form("maya", "start", {"title": "Round", "purpose": "Purpose", "template": "standard"})
    for who in ("alice", "bob"):
        await r.form(who, "join", {"sector": "resident"})
    await r.form("alice", "contribute", {"text": "Light the canal path"})
    await r.form("bob", "contribute", {"text": "Repair café"})
    await r.command("maya", "next")
    for who in ("alice", "bob"):
        await r.open_deck(who)
        for _ in range(2):
            await r.press(who, "Agree")
    await r.command("maya", "next")  # vote close: results, the chart, goals open


async def test_vote_close_posts_the_chart_png(fake_slack: FakeSlackWebAPI, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    async with rig(fake_slack, tmp_path) as r:
        await to_vote_close(r)
        [chart] = fake_slack.files(CHANNEL)
        assert chart.data is not None
        assert chart.data.startswith(b"\x89PNG")
        assert chart.filename == "consensus.png"
        shares = fake_slack.calls("files.completeUploadExternal")
        assert [c["channel_id"] for c in shares] == [CHANNEL]
        # The chart's text comes right before the picture, and the round goes on after it.
        order = [m.get("subtype") or m["text"][:20] for m in fake_slack.messages(CHANNEL)]
        at = order.index("file_share")
        assert "urgency" in fake_slack.messages(CHANNEL)[at - 1]["text"]
        assert at < len(order) - 1, "the goals phase message follows the chart"
        assert all(c.ok for c in fake_slack.calls() if c.method != "response_url")


@pytest.mark.parametrize(
    ("method", "fault"),
    [
        ("files.completeUploadExternal", {"error": "not_in_channel"}),  # the text is shown, then refused
        ("file_upload", {"status": 503}),  # nothing shown: the relay sends the text alone at once
        ("files.getUploadURLExternal", {"retry_after": 60}),
    ],
)
async def test_a_failed_chart_never_holds_the_channel_back(
    fake_slack: FakeSlackWebAPI, tmp_path: Path, method: str, fault: dict[str, Any]
) -> None:
    pytest.importorskip("matplotlib")
    fake_slack.fail_next(method, **fault)
    async with rig(fake_slack, tmp_path) as r:
        await to_vote_close(r)  # one drain: no clock moves, so nothing waits out a backoff
        assert not fake_slack.files()
        async with r.app.sessions() as s:
            undelivered = await s.scalar(select(OutboxRow.seq).where(OutboxRow.status != "sent").limit(1))
        assert undelivered is None
        texts = [m["text"] for m in fake_slack.messages(CHANNEL)]
        chart = [i for i, t in enumerate(texts) if "urgency" in t]
        assert len(chart) == 1, "the chart's text, once"
        assert chart[0] < len(texts) - 1, "and the round went on after it"
