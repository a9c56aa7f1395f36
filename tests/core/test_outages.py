"""A platform outage at a phase close loses nothing, and the conveners hear of it (threats D3, D4).

What people would notice: a channel missing the release of ideas after an outage, a channel's posts
out of order, conveners never told that a channel is silent, told twice, or a re-post button that
does nothing."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.console.port import ConsolePort
from bot.ids import new_id
from bot.persistence.tables import TimerRow
from bot.ports import DeliveryError
from bot.service import relay as relay_module
from bot.service.handlers.outages import ensure_watch
from bot.service.scheduler import DeadlineScheduler
from tests.core import story
from tests.harness import Harness, make_harness

NOTICE = r"not reaching a Discord channel \(D-common-goals\)"


class DownPort:
    """The simulated Discord, while it is down: every delivery (``public``: every post and edit in
    a channel) fails with ``error()`` until ``down`` is cleared; then it is the console port again."""

    def __init__(self, port: ConsolePort, error: Any, *, public: bool = False) -> None:
        self.port = port
        self.error = error
        self.public = public
        self.down = True
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.port, name)

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise self.error()

    async def post(self, *args: Any, **kwargs: Any) -> str:
        self._check()
        return await self.port.post(*args, **kwargs)

    async def edit(self, *args: Any, **kwargs: Any) -> None:
        self._check()
        await self.port.edit(*args, **kwargs)

    async def post_private(self, *args: Any, **kwargs: Any) -> None:
        if not self.public:
            self._check()
        await self.port.post_private(*args, **kwargs)

    async def send_direct(self, *args: Any, **kwargs: Any) -> str:
        if not self.public:
            self._check()
        return await self.port.send_direct(*args, **kwargs)


def http_503() -> DeliveryError:
    return DeliveryError("HTTP 503")


def not_connected() -> DeliveryError:
    return DeliveryError("not connected", offline=True)


async def ideas_in(h: Harness) -> None:
    """A round on Slack and Discord, everyone joined, ideas in; the watch is running."""
    await ensure_watch(h.app.sessions, h.clock)
    await story.start(h)
    await story.link_discord(h)
    await story.join_all(h)
    await story.contribute_all(h)


def take_discord_down(h: Harness, error: Any, *, public: bool = False) -> DownPort:
    down = DownPort(h.ports["discord"], error, public=public)
    h.app.relay.ports["discord"] = down  # type: ignore[assignment]
    return down


async def minutes(h: Harness, n: int, scheduler: DeadlineScheduler | None = None) -> None:
    """Live ``n`` minutes: each minute the timers due fire and the relay delivers what is due."""
    for _ in range(n):
        h.clock.advance(minutes=1)
        await (scheduler or h.app.scheduler).run_once()
        await h.driver.settle()


def release_lines(h: Harness, platform: str) -> list[str]:
    """The released ideas as one platform's channel shows them, in the order it got them."""
    posts = [i.text for i in h.shown(platform) if i.kind == "post"]
    return [line for text in posts for line in re.findall(r"^Idea \d+ · .*$", text, flags=re.M)]


def notices(h: Harness, name: str) -> list[str]:
    return [
        i.text
        for i in h.shown()
        if i.kind == "direct" and i.recipient == name.capitalize() and re.search(NOTICE, i.text)
    ]


async def test_D3_a_five_minute_outage_at_phase_close_delays_the_release_and_tells_nobody(
    harness: Harness,
) -> None:
    h = harness
    await ideas_in(h)
    down = take_discord_down(h, http_503)
    await h.driver.command(h.person("maya"), "next")  # the release, while Discord answers 503
    assert len(release_lines(h, "slack")) == 4
    assert release_lines(h, "discord") == []
    await minutes(h, 5)
    down.down = False
    await minutes(h, 5)  # the relay's own backoff, never more than five minutes
    assert release_lines(h, "discord") == release_lines(h, "slack"), "nothing lost, in the same order"
    assert notices(h, "maya") == notices(h, "ade") == [], "a short outage bothers nobody"
    assert await h.scalar("select count(*) from outbox where status = 'failed'") == 0


async def test_D3_a_long_outage_is_reported_once_to_each_convener_and_their_button_reposts(
    harness: Harness,
) -> None:
    h = harness
    await ideas_in(h)
    down = take_discord_down(h, http_503)
    await h.driver.command(h.person("maya"), "next")
    slack_release = release_lines(h, "slack")
    assert len(slack_release) == 4
    await minutes(h, 9)
    assert notices(h, "maya") == [], "not before stall_minutes (10)"
    await minutes(h, 2)
    [notice] = notices(h, "maya")  # Maya is on Slack, which works: told at once
    assert "Safer streets" in notice
    assert "failing there for 10 minutes" in notice
    await minutes(h, 2)
    assert len(notices(h, "maya")) == 1, "told once, however long the outage lasts"

    # Discord is back. Before the relay's backoff runs out, the conveners press "Re-post now".
    down.down = False
    maya, raj = h.person("maya"), h.person("raj")
    repost = h.driver.find_button(maya, "Re-post now", ":repost:")
    await h.driver.press(raj, repost, direct=True)  # not a convener: nothing happens
    assert "Only a convener" in h.privates("raj")[-1]
    assert release_lines(h, "discord") == []
    await h.driver.press(maya, repost, direct=True)
    assert "will be sent again now" in h.privates("maya")[-1]
    assert release_lines(h, "discord") == slack_release, "nothing lost, in the same order"

    # Ade (on Discord) gets the notice once the private reply's own retries reach him; once only.
    await minutes(h, 15)
    assert len(notices(h, "ade")) == 1
    assert len(notices(h, "maya")) == 1
    assert await h.scalar("select count(*) from outbox where status in ('pending', 'failed')") == 0
    await h.driver.press(maya, repost, direct=True)  # a second click finds nothing left to send
    assert "its posts have gone out" in h.privates("maya")[-1]
    assert release_lines(h, "discord") == slack_release


async def test_D4_a_client_not_connected_for_long_costs_no_attempt_is_reported_and_a_restart_delivers(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relay_module, "OFFLINE_RETRY_SECONDS", 0.0)  # the FixedClock's minutes only
    h = await make_harness(engine)
    await ideas_in(h)
    down = take_discord_down(h, not_connected)
    await h.driver.command(h.person("maya"), "next")
    slack_release = release_lines(h, "slack")
    await minutes(h, 11)
    assert down.calls >= 11, "the relay kept asking"
    assert await h.scalar("select max(attempts) from outbox") == 0, "not connected is no attempt"
    assert len(notices(h, "maya")) == 1
    assert release_lines(h, "discord") == []

    # The process restarts (the gateway never came back in it): the new one delivers everything.
    await h.close()
    h2 = await make_harness(engine, keys=h.keys, clock=h.clock)
    await ensure_watch(h2.app.sessions, h2.clock)
    watches = "select count(*) from timers where kind = 'watch_outbox' and status = 'pending'"
    assert await h2.scalar(watches) == 1, "one watch, however many starts"
    h2.person("maya", "slack")
    await minutes(h2, 2)
    assert release_lines(h2, "discord") == slack_release, "nothing lost, in the same order"
    assert release_lines(h2, "slack") == [], "Slack's posts went out before the restart, once"
    assert notices(h2, "maya") == [], "the stall was reported before the restart, once"
    assert await h2.scalar("select count(*) from outbox where status in ('pending', 'failed')") == 0
    await h2.close()


async def test_D3_a_refused_permission_is_never_retried_is_reported_and_reposts_once_put_right(
    harness: Harness,
) -> None:
    h = harness
    await ideas_in(h)
    refusal = DeliveryError("HTTP 403 missing access", permanent=True)
    down = take_discord_down(h, lambda: refusal, public=True)  # this channel only
    await h.driver.command(h.person("maya"), "next")
    slack_release = release_lines(h, "slack")
    await minutes(h, 11)
    refused = down.calls
    failed_posts = "select count(*) from outbox where status = 'failed' and visibility = 'public'"
    failed = await h.scalar(failed_posts)
    assert refused == failed, "each post was tried once: a 403 is never retried"
    [notice] = notices(h, "maya")
    assert "removed from that channel or lost its permission" in notice
    await minutes(h, 5)
    assert down.calls == refused
    assert len(notices(h, "maya")) == 1

    down.down = False  # the bot's permission is given back
    maya = h.person("maya")
    await h.driver.press(maya, h.driver.find_button(maya, "Re-post now", ":repost:"), direct=True)
    assert release_lines(h, "discord") == slack_release, "nothing lost, in the same order"
    assert (
        await h.scalar("select count(*) from outbox where status = 'failed' and visibility = 'public'") == 0
    )


async def test_the_watch_keeps_one_timer_row_however_long_it_runs_and_two_become_one(
    harness: Harness,
) -> None:
    h = harness
    await ensure_watch(h.app.sessions, h.clock)
    await ensure_watch(h.app.sessions, h.clock)  # a restart: still one
    watches = "select count(*) from timers where kind = 'watch_outbox' and status = 'pending'"
    assert await h.scalar(watches) == 1
    await minutes(h, 30)
    assert await h.scalar("select count(*) from timers where kind = 'watch_outbox'") == 1, "no trail"
    assert h.app.scheduler.fired == 30
    async with h.app.sessions() as s, s.begin():  # two processes that started at the same moment
        s.add(TimerRow(id=new_id(), kind="watch_outbox", phase="-", due_at=h.clock.now(), status="pending"))
    await minutes(h, 3)
    assert await h.scalar(watches) == 1
    assert h.app.scheduler.fired == 30 + 2 + 2
