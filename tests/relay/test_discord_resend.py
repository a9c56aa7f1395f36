"""A crash after Discord accepted a post, before the relay recorded it: the restart re-sends the row
with its nonce, and Discord (the fake, as Discord does with ``enforce_nonce``) returns the message it
already has. Nobody sees the post twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from bot.config import OutboxConfig
from bot.messages import Message, Part, Rendered
from bot.persistence.tables import ConversationRow
from bot.ports import ChatPort
from bot.prompts import PromptKey
from bot.refs import ConversationRef
from bot.service.outbox import public_row
from bot.service.relay import OutboxRelay
from tests.adapters.discord.rig import make_rig


class DiesAfterAccepting:
    """The real Discord port, in a process that is killed right after Discord accepted its n-th post."""

    def __init__(self, port: ChatPort, n: int) -> None:
        self.port = port
        self.platform = port.platform
        self.escape = port.escape
        self.n = n

    async def post(self, to: ConversationRef, message: Rendered, *, key: str | None = None) -> str:
        mid = await self.port.post(to, message, key=key)
        self.n -= 1
        if self.n == 0:
            raise asyncio.CancelledError  # killed before the relay could record it
        return mid


async def test_a_post_re_sent_after_a_crash_shows_once_on_discord(tmp_path: Path) -> None:
    async with make_rig(tmp_path) as rig, rig.running():
        rid = await rig.start_round()
        # The app's relay records what it delivered (the round card) before it stops: a record still
        # on its way would leave the card in flight under its worker, holding the channel's lane.
        await rig.settle()
        rig.app.stop.set()  # this test brings its own relays (processes)
        rig.app.relay.wake()
        await asyncio.gather(*rig.app.tasks)
        async with rig.app.sessions() as s, s.begin():
            conv = await s.scalar(select(ConversationRow))
            assert conv is not None
            for n in range(1, 6):
                s.add(
                    public_row(rid, conv, Message((Part(PromptKey.RELEASE_IDEA, {"label": n, "text": "x"}),)))
                )
        before = len(rig.public())

        def relay(port: ChatPort) -> OutboxRelay:
            config = OutboxConfig(worker_id="discord-worker")
            return OutboxRelay(
                rig.app.sessions, {"discord": port}, rig.app.core.prompts, rig.app.relay.clock, config
            )

        dying = relay(DiesAfterAccepting(rig.port, 3))  # type: ignore[arg-type]
        try:
            await dying.run_once()
        except asyncio.CancelledError:
            pass
        assert dying.identity is not None
        await dying.identity.release()  # the kernel's part of the kill
        assert len(rig.public()) == before + 3

        restarted = relay(rig.port)
        await restarted.drain()
        await restarted.aclose()
        posts = [m["content"] for m in rig.public()[before:]]
        assert [p.split("**")[1] for p in posts] == [f"Idea {n}" for n in range(1, 6)]
        sends = [
            c
            for c in rig.fake.calls_to("POST /channels/{channel_id}/messages")
            if "**Idea " in c.json["content"]
        ]
        assert len(sends) == 6, "the third post was sent twice, and Discord showed it once"
        assert sends[2].json["nonce"] == sends[3].json["nonce"]
        assert sends[2].response["id"] == sends[3].response["id"]
