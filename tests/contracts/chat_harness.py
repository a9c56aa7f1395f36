"""Each ChatPort with a view of what its platform shows people, for the one ChatPort contract.

* console: `ConsolePort` and its ``shown`` transcript;
* Slack: `SlackChatPort` against the fake Slack Web API (tests/platform_fakes/slack.py), read back
  from the messages the fake holds, its ephemeral calls and shared files;
* Discord: `DiscordChatPort` on a real discord.py client logged in to the fake Discord
  (tests/platform_fakes/discord.py), read back from the fake's messages and interaction follow-ups.

A harness reads messages as a person would (`Seen.text`: the platform's escapes undone) and lists
what the platform would turn into live markup (`Seen.live`: mentions, links, formatting).

Where a platform truly differs, the harness says so in words (``images_left_out``,
``never_refuses_because``, ``waits_out_rate_limits_because``): the contract then asserts that
declared behaviour instead. ``known_gaps`` names contract cases a port does not meet yet; those
run as strict xfails, so fixing the port makes them fail until the entry is removed.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import discord

from adapters.console.port import ConsolePort
from adapters.discord.port import DiscordChatPort, reply_handle
from adapters.slack.port import BoundedRateLimitRetryHandler, SlackChatPort, make_client
from bot.ports import ChatPort
from bot.refs import ConversationRef, Platform
from tests.platform_fakes import discord_payloads as p
from tests.platform_fakes.discord import FakeDiscord
from tests.platform_fakes.discord_client import client_kwargs, running_client
from tests.platform_fakes.markup import slack_pings, slack_seen
from tests.platform_fakes.slack import FakeSlackWebAPI

ZWSP = "\u200b"
KINDS = ("post", "direct", "private")  # the ways a message reaches people


@dataclass(frozen=True)
class Seen:
    """One message as a person sees it."""

    id: str
    text: str  # as read: escapes undone, zero-width characters gone
    buttons: tuple[str, ...] = ()  # action ids, in order
    labels: tuple[str, ...] = ()
    images: tuple[bytes, ...] = ()
    live: tuple[str, ...] = ()  # what the platform renders as a mention, a link or formatting


@dataclass
class ChatHarness:
    name: str
    port: ChatPort
    channel: ConversationRef
    unknown_channel: ConversationRef
    alice: str
    bob: str
    # Kinds of send whose image is shown; the others show the text alone, for the reason given.
    images_left_out: Mapping[str, str] = field(default_factory=dict)
    # A platform that never refuses a delivery (no token, no channel list, no rate limit).
    never_refuses_because: str = ""
    # A platform client that sleeps through Retry-After itself instead of raising.
    waits_out_rate_limits_because: str = ""
    known_gaps: Mapping[str, str] = field(default_factory=dict)

    # --- what the platform shows ------------------------------------------------------------
    def channel_messages(self) -> list[Seen]:
        raise NotImplementedError

    def privately_to(self, user: str) -> list[Seen]:
        """Everything only ``user`` sees: ephemeral replies and direct messages."""
        raise NotImplementedError

    def direct_to(self, user: str) -> list[Seen]:
        raise NotImplementedError

    def pings(self) -> list[str]:
        """Notifications the sends so far would fire."""
        raise NotImplementedError

    def link_previews(self) -> int:
        """Sends that would unfurl a link preview."""
        raise NotImplementedError

    async def reply_handle(self, user: str) -> str | None:
        """A handle of an interaction ``user`` just made that a private reply may answer, or None."""
        raise NotImplementedError

    # --- platform faults ----------------------------------------------------------------------
    def revoke_token(self) -> None:
        raise NotImplementedError

    def rate_limit_next(self, seconds: float) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        close = getattr(self.port, "aclose", None)
        if close is not None:
            await close()


# --- console ------------------------------------------------------------------------------------


class ConsoleHarness(ChatHarness):
    port: ConsolePort

    def _seen(self, kind: str, recipient: str | None = None, channel: str | None = None) -> list[Seen]:
        folded: dict[str, Seen] = {}
        listed: list[Seen] = []
        for item in self.port.shown:
            if item.kind != kind and not (kind == "post" and item.kind == "edit"):
                continue
            if recipient is not None and item.recipient != recipient:
                continue
            if channel is not None and item.channel != channel:
                continue
            seen = Seen(
                item.message_id,
                item.text,
                tuple(b.action_id for b in item.buttons),
                tuple(b.label for b in item.buttons),
                (item.image.data,) if item.image else (),
            )
            if kind == "post":
                folded[item.message_id] = seen  # an edit replaces what its post showed
            else:
                listed.append(seen)
        return list(folded.values()) if kind == "post" else listed

    def channel_messages(self) -> list[Seen]:
        return self._seen("post", channel=self.port.channel_names[self.channel.channel_id])

    def privately_to(self, user: str) -> list[Seen]:
        return self._seen("private", recipient=user) + self.direct_to(user)

    def direct_to(self, user: str) -> list[Seen]:
        return self._seen("direct", recipient=user)

    def pings(self) -> list[str]:
        return []  # a terminal notifies no one

    def link_previews(self) -> int:
        return 0

    async def reply_handle(self, user: str) -> str | None:
        return None  # the console answers in place; there is no interaction to follow up on


@contextlib.asynccontextmanager
async def console_harness() -> AsyncIterator[ChatHarness]:
    port = ConsolePort(Platform.CONSOLE, channel_names={"general": "#general"})
    yield ConsoleHarness(
        "console",
        port,
        ConversationRef(Platform.CONSOLE, "local", "general"),
        ConversationRef(Platform.CONSOLE, "local", "nowhere"),
        "alice",
        "bob",
        images_left_out={
            "private": "the console transcript shows a picture with channel posts only",
            "direct": "the console transcript shows a picture with channel posts only",
        },
        never_refuses_because="a local transcript: no token, no channel list, no rate limit",
        known_gaps={
            "formatting": "ConsolePort.escape leaves '**' alone and plain() then strips it from user text",
        },
    )


# --- Slack --------------------------------------------------------------------------------------


def _slack_seen(ts: str, blocks: Any, images: tuple[bytes, ...] = ()) -> Seen:
    """A Slack message as a person reads it (`slack_seen`): a style on text counts as live, as every
    message in this contract is plain or a person's text alone."""
    seen = slack_seen(blocks)
    styled = tuple(f"style {st}" for st in seen.styles if st)
    return Seen(
        ts,
        seen.text,
        tuple(a for _, a in seen.buttons),
        tuple(label for label, _ in seen.buttons),
        images,
        seen.live + styled,
    )


class SlackHarness(ChatHarness):
    port: SlackChatPort
    fake: FakeSlackWebAPI

    def _conversation(self, channel: str) -> list[Seen]:
        """Messages in a conversation; a shared file goes with the text right above it."""
        files = {f.id: f for f in self.fake.files(channel)}
        out: list[Seen] = []
        for msg in self.fake.messages(channel):
            if msg.get("subtype") == "file_share" and out:
                shared = tuple(files[f["id"]].data or b"" for f in msg["files"] if f["id"] in files)
                last = out[-1]
                out[-1] = Seen(last.id, last.text, last.buttons, last.labels, last.images + shared, last.live)
            else:
                out.append(_slack_seen(msg["ts"], msg.get("blocks")))
        return out

    def channel_messages(self) -> list[Seen]:
        return self._conversation(self.channel.channel_id)

    def privately_to(self, user: str) -> list[Seen]:
        ephemeral = [
            _slack_seen(c.response.get("message_ts", ""), c.blocks)
            for c in self.fake.calls("chat.postEphemeral")
            if c.ok and c.get("user") == user
        ]
        return ephemeral + self.direct_to(user)

    def direct_to(self, user: str) -> list[Seen]:
        return self._conversation("D" + user[1:])

    def pings(self) -> list[str]:
        sent = [*self.fake.messages(), *(c.params for c in self.fake.calls("chat.postEphemeral") if c.ok)]
        return [ping for msg in sent for ping in slack_pings(str(msg.get("text") or ""), _blocks(msg))]

    def link_previews(self) -> int:
        return sum(
            1
            for c in self.fake.calls("chat.postMessage")
            if str(c.get("unfurl_links")).lower() != "false" or str(c.get("unfurl_media")).lower() != "false"
        )

    async def reply_handle(self, user: str) -> str | None:
        return self.fake.new_response_url()

    def revoke_token(self) -> None:
        self.fake.revoked_tokens.add(self.fake.bot_token)

    def rate_limit_next(self, seconds: float) -> None:
        for method in ("chat.postMessage", "chat.update", "chat.postEphemeral", "conversations.open"):
            self.fake.fail_next(method, retry_after=int(seconds))


def _blocks(params: Mapping[str, Any]) -> Any:
    blocks = params.get("blocks")
    return json.loads(blocks) if isinstance(blocks, str) else blocks


@contextlib.asynccontextmanager
async def slack_harness() -> AsyncIterator[ChatHarness]:
    alice, bob = "U0ALICE", "U0BOB"
    known = {"C0GENERAL", "D" + alice[1:], "D" + bob[1:]}
    async with FakeSlackWebAPI(known_channels=known) as fake:
        port = SlackChatPort(
            make_client(fake.bot_token, fake.base_url, retry_handlers=[BoundedRateLimitRetryHandler()])
        )
        h = SlackHarness(
            "slack",
            port,
            ConversationRef(Platform.SLACK, fake.workspace.team_id, "C0GENERAL"),
            ConversationRef(Platform.SLACK, fake.workspace.team_id, "C0NOWHERE"),
            alice,
            bob,
            images_left_out={"private": "Slack's ephemeral messages cannot carry an uploaded file"},
        )
        h.fake = fake
        try:
            yield h
        finally:
            await h.aclose()


# --- Discord ------------------------------------------------------------------------------------

_DISCORD_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")  # a backslash before ASCII punctuation
_DISCORD_LIVE = (
    re.compile(r"<@!?\d+>|<@&\d+>|<#\d+>"),  # mentions and channel links, shown as pills
    re.compile(r"@(?:everyone|here)\b"),
    re.compile(r"\[[^\]\n]+\]\(\s*<?https?://[^)\s]+>?\s*\)"),  # a masked link
    re.compile(r"(\*\*|__|~~|\|\||[*_`])(?=\S)(.+?)(?<=\S)\1", re.S),  # bold, underline, ...
    re.compile(r"(?m)^(?:#{1,3} |-# |>>> |> |```|[-*] )"),  # headings, small print, quotes, lists
)


def read_discord(content: str) -> tuple[str, tuple[str, ...]]:
    """Discord markdown as a person reads it: a backslash before punctuation shows the character
    alone, zero-width spaces are invisible; what is left unescaped may be live markup."""
    masked = _DISCORD_ESCAPED.sub("\ue000", content)  # an escaped character is never markup
    live = tuple(m.group(0) for rx in _DISCORD_LIVE for m in rx.finditer(masked))
    return _DISCORD_ESCAPED.sub(r"\1", content).replace(ZWSP, ""), live


class _Acknowledging(discord.Client):
    """Answers every interaction as the adapter does first: an ephemeral "thinking" deferral."""

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)


class DiscordHarness(ChatHarness):
    port: DiscordChatPort
    fake: FakeDiscord
    people: dict[str, p.JSON]

    def _seen(self, msg: p.JSON) -> Seen:
        text, live = read_discord(msg.get("content") or "")
        comps = [c for row in msg.get("components") or [] for c in row.get("components") or []]
        return Seen(
            str(msg["id"]),
            text,
            tuple(c["custom_id"] for c in comps),
            tuple(c.get("label", "") for c in comps),
            tuple(self.fake.attachment_data(msg)),
            live,
        )

    def _bot_messages(self, channel_id: str) -> list[Seen]:
        return [
            self._seen(m)
            for m in self.fake.channel_messages(channel_id)
            if m["author"]["id"] == self.fake.bot_user["id"] and m.get("webhook_id") is None
        ]

    def channel_messages(self) -> list[Seen]:
        return self._bot_messages(self.channel.channel_id)

    def privately_to(self, user: str) -> list[Seen]:
        ephemeral = [
            self._seen(m)
            for rec in self.fake.interactions.values()
            if (rec.payload.get("member") or {}).get("user", {}).get("id") == user
            for m in rec.followups
            if m["flags"] & p.FLAG_EPHEMERAL
        ]
        return ephemeral + self.direct_to(user)

    def direct_to(self, user: str) -> list[Seen]:
        return [
            s
            for cid, ch in self.fake.channels.items()
            if ch["type"] == 1 and ch["recipients"][0]["id"] == user
            for s in self._bot_messages(cid)
        ]

    def pings(self) -> list[str]:
        return [repr(pg) for _call, pg in self.fake.pings()]

    def link_previews(self) -> int:
        suppress = 1 << 2
        return sum(
            1
            for call in self.fake.calls_to("POST /channels/{channel_id}/messages")
            if 200 <= call.status < 300 and not int((call.json or {}).get("flags") or 0) & suppress
        )

    async def reply_handle(self, user: str) -> str | None:
        rec = await self.fake.interact(self.fake.slash("convene", "help", user=self.people[user]))
        await rec.callback()
        return reply_handle(self.fake.app_id, rec.token)

    def revoke_token(self) -> None:
        self.fake.token = "reset-in-the-developer-portal"

    def rate_limit_next(self, seconds: float) -> None:
        for route in (
            "POST /channels/{channel_id}/messages",
            "PATCH /channels/{channel_id}/messages/{message_id}",
        ):
            self.fake.fail_next(route, retry_after=seconds)


@contextlib.asynccontextmanager
async def discord_harness() -> AsyncIterator[ChatHarness]:
    gid = p.snowflake()
    people = {name: p.user(username=name) for name in ("owner", "alice", "bob")}
    general = p.text_channel(name="general", guild_id=gid)
    guild = p.guild(
        gid,
        owner_id=people["owner"]["id"],
        channels=[general],
        members=[p.member(u) for u in people.values()],
    )
    async with FakeDiscord(guilds=[guild]) as fake:
        with fake.patch_discord():
            client = _Acknowledging(**client_kwargs())
            async with running_client(fake, client):
                h = DiscordHarness(
                    "discord",
                    DiscordChatPort(client),
                    ConversationRef(Platform.DISCORD, gid, str(general["id"])),
                    ConversationRef(Platform.DISCORD, gid, p.snowflake()),
                    str(people["alice"]["id"]),
                    str(people["bob"]["id"]),
                    waits_out_rate_limits_because="discord.py sleeps through Retry-After itself "
                    "(max_ratelimit_timeout is unset), then sends once",
                )
                h.fake = fake
                h.people = {str(u["id"]): u for u in people.values()}
                yield h
        assert not fake.unhandled, [(c.method, c.path) for c in fake.unhandled]


HARNESSES = {"console": console_harness, "slack": slack_harness, "discord": discord_harness}
