"""A simulated chat platform for the relay's tests: what it accepted, in order, in memory and
optionally in a file shared between processes (so a relay in a killed process and the one that
restarts after it deliver to the same place). It can fail, hold a delivery in flight, fail pictures,
deduplicate posts by key as Discord's enforced nonce does, and it counts overlapping deliveries to
one channel (which would break a conversation's order)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bot.messages import Rendered
from bot.ports import ChatPort, DeliveryError
from bot.refs import ConversationRef, Platform


class FilePlatform:
    def __init__(
        self,
        path: str | Path | None = None,
        *,
        latency: float = 0.0,
        dedupe: tuple[str, ...] = (),
        after_accept: Callable[[], None] | None = None,
        before: Callable[[str, str], Awaitable[None]] | None = None,
    ) -> None:
        self.path = Path(path) if path else None
        self.latency = latency
        self.dedupe = dedupe  # platforms whose posts honour the key
        self.after_accept = after_accept
        self.before = before  # awaited with (platform, channel) as each public call starts
        self.shown: list[dict[str, Any]] = []
        self.errors: dict[str, list[DeliveryError]] = defaultdict(list)  # raised by the next calls
        self.fail_images = False
        self.gate: asyncio.Event | None = None  # while unset, deliveries wait (held in flight)
        self.overlaps = 0
        self._busy: dict[str, int] = defaultdict(int)
        if self.path is not None and self.path.exists():
            self.shown = self.read()

    def read(self) -> list[dict[str, Any]]:
        assert self.path is not None
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def ports(self) -> dict[str, ChatPort]:
        return {"slack": _Port(self, Platform.SLACK), "discord": _Port(self, Platform.DISCORD)}

    def posts(self, channel: str | None = None) -> list[str]:
        """Texts of the public posts (not edits), in the order the platform accepted them."""
        return [e["text"] for e in self.shown if e["kind"] == "post" and channel in (None, e["channel"])]

    def card(self, message_id: str) -> str:
        """What a posted message shows now (its last edit)."""
        return [e["text"] for e in self.shown if e["message_id"] == message_id][-1]

    async def deliver(
        self,
        platform: Platform,
        kind: str,
        channel: str,
        message: Rendered,
        *,
        key: str | None = None,
        message_id: str | None = None,
        recipient: str | None = None,
    ) -> str:
        public = kind in ("post", "edit")
        lane = f"{platform.value}:{channel}"
        if public:
            self._busy[lane] += 1
            self.overlaps += self._busy[lane] > 1
        try:
            if self.before is not None and public:
                await self.before(platform.value, channel)
            if self.latency:
                await asyncio.sleep(self.latency)
            if self.gate is not None:
                await self.gate.wait()
            if self.errors[platform.value]:
                raise self.errors[platform.value].pop(0)
            if message.image is not None and self.fail_images:
                raise DeliveryError("file upload: HTTP 503")
            if kind == "post" and key and platform.value in self.dedupe:
                earlier = next((e for e in self.shown if e.get("key") == key), None)
                if earlier is not None:
                    return str(earlier["message_id"])
            entry = {
                "platform": platform.value,
                "kind": kind,
                "channel": channel,
                "message_id": message_id or f"{platform.value}-{uuid.uuid4().hex[:10]}",
                "text": message.text,
                "image": message.image is not None,
                "key": key,
                "recipient": recipient,
            }
            self.shown.append(entry)
            if self.path is not None:
                with self.path.open("a") as fh:
                    fh.write(json.dumps(entry) + "\n")
            if self.after_accept is not None:
                self.after_accept()
            return str(entry["message_id"])
        finally:
            if public:
                self._busy[lane] -= 1


class _Port:
    def __init__(self, world: FilePlatform, platform: Platform) -> None:
        self.world = world
        self.platform = platform

    def escape(self, text: str) -> str:
        return text

    async def post(self, to: ConversationRef, message: Rendered, *, key: str | None = None) -> str:
        return await self.world.deliver(self.platform, "post", to.channel_id, message, key=key)

    async def edit(self, to: ConversationRef, message_id: str, message: Rendered) -> None:
        await self.world.deliver(self.platform, "edit", to.channel_id, message, message_id=message_id)

    async def post_private(
        self, to: ConversationRef, user_id: str, message: Rendered, reply_handle: str | None
    ) -> None:
        await self.world.deliver(self.platform, "private", to.channel_id, message, recipient=user_id)

    async def send_direct(
        self, workspace_id: str, user_id: str, message: Rendered, *, key: str | None = None
    ) -> str:
        return await self.world.deliver(self.platform, "direct", "dm", message, key=key, recipient=user_id)
