"""One contract for every ChatPort (console, Slack, Discord): what the outbox relay relies on, checked
by what each platform then shows people (see chat_harness.py)."""

from __future__ import annotations

import time

import pytest

from bot.messages import Attachment, Block, Button, Rendered
from bot.ports import DeliveryError
from tests.contracts.chat_harness import KINDS, ChatHarness, Seen

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 2

# User text that must stay text: (case, what someone typed).
INJECTIONS = [
    ("everyone", "@everyone and @here, look"),
    ("specials", "<!channel> <!here> <!everyone> <!subteam^S0123|team>"),
    ("users", "hi <@U0BOB>, <@123456789012345678> and <@!123456789012345678>"),
    ("roles-and-channels", "role <@&456> in <#789> and <#C0GENERAL>"),
    ("masked-link", "[totally safe](https://evil.example/phish)"),
    ("slack-link", "<https://evil.example/phish|totally safe>"),
    ("formatting", "**bold** __under__ ~~strike~~ `code` ||spoiler|| *star* _it_ ~tilde~"),
    ("line-markup", "# Big heading\n> quoted\n-# small print\n```block```"),
    ("entities", "fish & chips &amp; 1 < 2 > 0"),
]


def text_of(items: list[Seen]) -> str:
    return "\n".join(s.text for s in items)


def msg(text: str, *buttons: Button, image: Attachment | None = None) -> Rendered:
    return Rendered((Block(text, tuple(buttons)),), image=image)


async def send(chat: ChatHarness, kind: str, message: Rendered, to: str | None = None) -> str | None:
    """Sends ``message`` the ``kind`` way (to alice, for the private kinds); the id if there is one."""
    who = to or chat.alice
    if kind == "post":
        return await chat.port.post(chat.channel, message)
    if kind == "direct":
        return await chat.port.send_direct(chat.channel.workspace_id, who, message)
    await chat.port.post_private(chat.channel, who, message, await chat.reply_handle(who))
    return None


def shown(chat: ChatHarness, kind: str, to: str | None = None) -> list[Seen]:
    who = to or chat.alice
    if kind == "post":
        return chat.channel_messages()
    if kind == "direct":
        return chat.direct_to(who)
    return chat.privately_to(who)


class TestChatPort:
    async def test_a_post_returns_its_id_and_the_text_appears_in_the_channel(self, chat: ChatHarness) -> None:
        first = await chat.port.post(chat.channel, msg("Round card: Safer streets"))
        second = await chat.port.post(chat.channel, msg("Idea 1: light the canal path"))
        assert isinstance(first, str)
        assert first
        assert second != first
        seen = chat.channel_messages()
        assert [s.id for s in seen] == [first, second]
        assert [s.text for s in seen] == ["Round card: Safer streets", "Idea 1: light the canal path"]
        assert not chat.privately_to(chat.alice)

    async def test_an_edit_replaces_that_message_and_posts_nothing_new(self, chat: ChatHarness) -> None:
        keep = await chat.port.post(chat.channel, msg("Idea 1"))
        card = await chat.port.post(
            chat.channel, msg("Owner: nobody yet", Button("cv:r1:take:a1", "I'll take this"))
        )
        await chat.port.edit(chat.channel, card, msg("Owner: Maya", Button("cv:r1:done:a1", "Mark done")))
        await chat.port.edit(chat.channel, card, msg("Owner: Maya (done)"))
        seen = chat.channel_messages()
        assert [s.id for s in seen] == [keep, card]
        assert seen[0].text == "Idea 1"
        assert seen[1].text == "Owner: Maya (done)"
        assert seen[1].buttons == ()  # the old button is gone, not left live

    async def test_a_private_reply_reaches_its_recipient_only(self, chat: ChatHarness) -> None:
        await chat.port.post(chat.channel, msg("Round card"))
        handle = await chat.reply_handle(chat.alice)
        await chat.port.post_private(chat.channel, chat.alice, msg("Your idea is saved"), handle)
        # Without an interaction to answer (expired, or a reminder), it still reaches only her.
        await chat.port.post_private(chat.channel, chat.alice, msg("Voting opens at noon"), None)
        mine = text_of(chat.privately_to(chat.alice))
        assert "Your idea is saved" in mine
        assert "Voting opens at noon" in mine
        assert "saved" not in text_of(chat.privately_to(chat.bob))
        assert "noon" not in text_of(chat.privately_to(chat.bob))
        assert text_of(chat.channel_messages()) == "Round card"

    async def test_a_direct_message_reaches_its_recipient_only(self, chat: ChatHarness) -> None:
        mid = await chat.port.send_direct(
            chat.channel.workspace_id, chat.bob, msg("Your action is due Friday")
        )
        assert isinstance(mid, str)
        assert mid
        [dm] = chat.direct_to(chat.bob)
        assert dm.id == mid
        assert dm.text == "Your action is due Friday"
        assert not chat.direct_to(chat.alice)
        assert not chat.channel_messages()

    @pytest.mark.parametrize(("case", "typed"), INJECTIONS, ids=[c for c, _ in INJECTIONS])
    async def test_escaped_user_text_reads_as_typed_and_fires_nothing(
        self, chat: ChatHarness, case: str, typed: str, request: pytest.FixtureRequest
    ) -> None:
        if case in chat.known_gaps:
            request.applymarker(
                pytest.mark.xfail(reason=f"{chat.name}: {chat.known_gaps[case]}", strict=True)
            )
        await chat.port.post(chat.channel, msg(chat.port.escape(typed)))
        [seen] = chat.channel_messages()
        assert seen.text == typed
        assert seen.live == ()
        assert chat.pings() == []
        assert chat.link_previews() == 0

    async def test_buttons_carry_their_action_ids_every_way_a_message_goes(self, chat: ChatHarness) -> None:
        buttons = (
            Button("cv:r1:v:7:a", "Agree", "primary"),
            Button("cv:r1:v:7:d", "Disagree", "danger"),
            Button("cv:r1:v:7:p", "Pass"),
        )
        for kind in KINDS:
            blocks = (Block(f"Idea 7 ({kind}): plant trees", buttons[:2]), Block("", buttons[2:]))
            await send(chat, kind, Rendered(blocks))
            [seen] = [s for s in shown(chat, kind) if f"({kind})" in s.text]
            assert seen.buttons == tuple(b.action_id for b in buttons), kind
            assert seen.labels == tuple(b.label for b in buttons), kind

    async def test_an_image_is_shown_with_its_text_or_the_text_alone_where_it_cannot_be(
        self, chat: ChatHarness
    ) -> None:
        chart = Attachment("consensus.png", PNG)
        for kind in KINDS:
            await send(chat, kind, msg(f"Results ({kind}): 3 ideas are common ground", image=chart))
            [seen] = [s for s in shown(chat, kind) if f"({kind})" in s.text]
            assert seen.text == f"Results ({kind}): 3 ideas are common ground"
            if kind in chat.images_left_out:
                assert seen.images == (), chat.images_left_out[kind]
            else:
                assert seen.images == (PNG,), kind

    async def test_a_revoked_token_is_a_permanent_failure(self, chat: ChatHarness) -> None:
        if chat.never_refuses_because:
            pytest.skip(f"{chat.name}: {chat.never_refuses_because}")
        chat.revoke_token()
        for kind in ("post", "direct"):
            with pytest.raises(DeliveryError) as err:
                await send(chat, kind, msg("Round card"))
            assert err.value.permanent, kind
        assert not chat.channel_messages()

    async def test_an_unknown_channel_is_a_permanent_failure(self, chat: ChatHarness) -> None:
        if chat.never_refuses_because:
            # Declared: the console shows whatever it is asked to, wherever.
            assert await chat.port.post(chat.unknown_channel, msg("Round card"))
            return
        with pytest.raises(DeliveryError) as err:
            await chat.port.post(chat.unknown_channel, msg("Round card"))
        assert err.value.permanent
        assert not chat.channel_messages()

    async def test_a_rate_limit_carries_retry_after_and_nothing_is_shown_twice(
        self, chat: ChatHarness
    ) -> None:
        if chat.never_refuses_because:
            pytest.skip(f"{chat.name}: {chat.never_refuses_because}")
        if chat.waits_out_rate_limits_because:
            chat.rate_limit_next(0.2)
            started = time.monotonic()
            mid = await chat.port.post(chat.channel, msg("Idea 1"))
            assert time.monotonic() - started >= 0.2, chat.waits_out_rate_limits_because
            assert [s.id for s in chat.channel_messages()] == [mid]
            return
        chat.rate_limit_next(30)  # longer than a delivery may wait in place
        with pytest.raises(DeliveryError) as err:
            await chat.port.post(chat.channel, msg("Idea 1"))
        assert not err.value.permanent
        assert err.value.retry_after is not None
        assert err.value.retry_after >= 30
        assert not chat.channel_messages()
        mid = await chat.port.post(chat.channel, msg("Idea 1"))  # the relay's retry, after the wait
        assert [s.id for s in chat.channel_messages()] == [mid]
