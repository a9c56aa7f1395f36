"""A convene App + the Slack adapter in HTTP mode, driven by signed requests against the fake Slack."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slack_bolt.async_app import AsyncApp
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.slack.app import SlackHandlers, create_bolt_app, web_app
from adapters.slack.port import BoundedRateLimitRetryHandler, SlackChatPort, make_client
from bot.app import App, build_app
from bot.config import AppConfig, DatabaseConfig, RoundsConfig, SlackConfig, SlackConveners
from bot.keys import MemoryKeyStore
from bot.ports import FixedClock
from tests.platform_fakes.markup import slack_seen
from tests.platform_fakes.slack import FakeSlackWebAPI, SimResponse, SlackClientSim, serve_aiohttp_app

CHANNEL = "C0GENERAL"
PATH = "/slack/events"
CONVENER = ("U0MAYA", "maya")
USERS = {"maya": "U0MAYA", "alice": "U0ALICE", "bob": "U0BOB", "carol": "U0CAROL", "dan": "U0DAN"}


def slack_config(fake: FakeSlackWebAPI, **conveners: Any) -> SlackConfig:
    return SlackConfig(
        enabled=True,
        mode="http",
        api_base_url=fake.base_url,
        conveners=SlackConveners(**(conveners or {"user_ids": [CONVENER[0]]})),
    )


@dataclass
class Rig:
    fake: FakeSlackWebAPI
    app: App
    bolt: AsyncApp
    port: SlackChatPort
    sim: SlackClientSim
    url: str
    decks: dict[str, str] = field(default_factory=dict)  # who -> the ts of their deck card

    @property
    def handlers(self) -> SlackHandlers:
        h = self.bolt.convene_handlers  # type: ignore[attr-defined]
        assert isinstance(h, SlackHandlers)
        return h

    async def settle(self) -> None:
        await self.handlers.wait_idle()
        await self.app.relay.drain()

    async def send(self, inbound: Any, **kw: Any) -> SimResponse:
        resp = await self.sim.send(inbound, **kw)
        await self.settle()
        return resp

    async def command(self, who: str, text: str, channel: str = CHANNEL, **kw: Any) -> SimResponse:
        inbound = self.fake.payloads.slash_command(
            text=text, user_id=USERS[who], user_name=who, channel_id=channel, **kw
        )
        resp = await self.send(inbound)
        assert resp.status == 200, resp
        return resp

    def last_view(self) -> dict[str, Any]:
        call = self.fake.calls("views.open")[-1]
        assert call.ok, call.response
        view = call.view
        assert isinstance(view, dict)
        return view

    async def submit(self, who: str, view: dict[str, Any], values: dict[str, str]) -> SimResponse:
        kinds = {b["block_id"]: b["element"]["type"] for b in view["blocks"] if b["type"] == "input"}
        state: dict[str, dict[str, Any]] = {}
        for name, value in values.items():
            kind = kinds.get(name, "plain_text_input")
            if kind == "static_select":
                v: Any = {"type": kind, "selected_option": {"value": value} if value else None}
            elif kind == "datepicker":
                v = {"type": kind, "selected_date": value or None}
            else:
                v = {"type": "plain_text_input", "value": value}
            state[name] = {name: v}
        inbound = self.fake.payloads.view_submission(
            view["callback_id"],
            state,
            private_metadata=view["private_metadata"],
            user_id=USERS[who],
            user_name=who,
            blocks=view["blocks"],
        )
        return await self.send(inbound)

    async def form(self, who: str, text: str, values: dict[str, str]) -> SimResponse:
        before = len(self.fake.calls("views.open"))
        await self.command(who, text)
        assert len(self.fake.calls("views.open")) == before + 1, self.ephemerals_text(who)
        return await self.submit(who, self.last_view(), values)

    async def click(self, who: str, action_id: str, channel: str = CHANNEL) -> SimResponse:
        inbound = self.fake.payloads.block_actions(
            action_id, action_id, user_id=USERS[who], user_name=who, channel_id=channel
        )
        resp = await self.send(inbound)
        assert resp.status == 200, resp
        return resp

    # what people saw ---------------------------------------------------------------------------
    def channel_buttons(self, pattern: str) -> list[str]:
        return [
            action_id
            for msg in self.fake.messages(CHANNEL)
            for _label, action_id in slack_seen(msg.get("blocks")).buttons
            if re.search(pattern, action_id)
        ]

    def public_blocks(self) -> list[Any]:
        return [c.blocks for c in self.fake.calls() if c.method in ("chat.postMessage", "chat.update")]

    def public_text(self) -> str:
        """What the channel was shown, posts and edits, as people read it (buttons' labels too)."""
        return "\n".join(seen_text(blocks) for blocks in self.public_blocks())

    # the voting deck: a private card replaced in place through response_urls --------------------
    def card(self, who: str) -> dict[str, Any] | None:
        """The deck card ``who`` sees now: the ephemeral message their last "Vote" click opened,
        as replaced in place since."""
        ts = self.decks.get(who)
        return next((m for m in self.fake.ephemerals(CHANNEL, USERS[who]) if m["ts"] == ts), None)

    async def open_deck(self, who: str) -> dict[str, Any] | None:
        """Click the "Vote" button of the newest public post that has one, as Slack sends it."""

        def newest() -> tuple[Any, str] | None:
            return next(
                (
                    (m, i)
                    for m in reversed(self.fake.messages(CHANNEL))
                    for i in card_buttons(m).values()
                    if i.endswith(":deck")
                ),
                None,
            )

        # The release reaches the channel through the relay, after the convener's confirmation.
        await self.fake.wait_until(lambda: newest() is not None, 5.0, "a post with a Vote button")
        found = newest()
        assert found is not None
        message, action_id = found
        inbound = self.fake.payloads.block_actions(
            action_id,
            action_id,
            user_id=USERS[who],
            user_name=who,
            channel_id=CHANNEL,
            message_ts=message["ts"],
            message=message,
        )
        resp = await self.send(inbound)
        assert resp.status == 200, resp
        mine = self.fake.ephemerals(CHANNEL, USERS[who])
        if mine:
            self.decks[who] = mine[-1]["ts"]
        return self.card(who)

    async def press(self, who: str, label: str, card: dict[str, Any] | None = None) -> SimResponse:
        """Click the button labelled ``label`` on ``who``'s card (or on ``card``, an older one)."""
        card = card or self.card(who)
        assert card is not None, f"{who} has no card"
        action_id = card_buttons(card)[label]
        inbound = self.fake.payloads.block_actions(
            action_id,
            action_id,
            user_id=USERS[who],
            user_name=who,
            channel_id=CHANNEL,
            message_ts=card["ts"],
            message=card,
            is_ephemeral=True,
        )
        resp = await self.send(inbound)
        assert resp.status == 200, resp
        return resp

    def ephemerals(self, who: str) -> list[Any]:
        return [c for c in self.fake.calls("chat.postEphemeral") if c.get("user") == USERS[who]]

    def ephemerals_text(self, who: str) -> str:
        """What ``who`` was told in ephemeral messages (chat.postEphemeral), as they read it."""
        return "\n".join(seen_text(c.blocks) for c in self.ephemerals(who))


def seen_text(blocks: Any) -> str:
    """A message's text and its buttons' labels, as a person reads them."""
    seen = slack_seen(blocks)
    return "\n".join([seen.text, *(label for label, _ in seen.buttons)])


def card_text(card: dict[str, Any]) -> str:
    return slack_seen(card.get("blocks")).text


def card_buttons(card: dict[str, Any]) -> dict[str, str]:
    """label -> action_id of a card's buttons."""
    return slack_seen(card.get("blocks")).action_ids


def card_idea(card: dict[str, Any] | None) -> int | None:
    """The idea a card shows (its vote buttons carry it), or None."""
    for action_id in card_buttons(card).values() if card else ():
        m = re.search(r":v:(\d+):", action_id)
        if m:
            return int(m.group(1))
    return None


@contextlib.asynccontextmanager
async def rig(
    fake: FakeSlackWebAPI,
    tmp_path: Path,
    *,
    engine: AsyncEngine | None = None,
    rounds: RoundsConfig | None = None,
    **conveners: Any,
) -> AsyncIterator[Rig]:
    """``engine``: a database of the caller's (the ``engine`` fixture: PostgreSQL too), else SQLite;
    ``rounds``: the rounds' settings (templates), else the defaults."""
    config = AppConfig(
        database=DatabaseConfig(url=f"sqlite+aiosqlite:///{tmp_path}/t.db"),
        slack=slack_config(fake, **conveners),
        rounds=rounds or RoundsConfig(),
    )
    port = SlackChatPort(
        make_client(fake.bot_token, fake.base_url, retry_handlers=[BoundedRateLimitRetryHandler()])
    )
    app = await build_app(
        config,
        {"slack": port},
        keys=MemoryKeyStore(),
        clock=FixedClock(),
        engine=engine,
        migrate=engine is None,
    )
    try:
        bolt = create_bolt_app(
            app.core,
            config.slack,
            client=make_client(fake.bot_token, fake.base_url),
            signing_secret=fake.signing_secret,
        )
        async with (
            serve_aiohttp_app(web_app(bolt, fake.signing_secret, PATH)) as base,
            SlackClientSim(base + PATH, fake.signing_secret) as sim,
        ):
            try:
                yield Rig(fake, app, bolt, port, sim, base + PATH)
                await bolt.convene_handlers.wait_idle()  # type: ignore[attr-defined]
            finally:
                await bolt.convene_handlers.aclose()  # type: ignore[attr-defined]
    finally:
        await app.aclose()
        await port.aclose()
