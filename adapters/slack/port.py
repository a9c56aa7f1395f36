"""`SlackChatPort`: the outbox relay's way into Slack (Block Kit over the Web API).

Rendering rules (Block Kit limits, see the design notes, platform-testing.md §5):

* each neutral `Block` becomes ``rich_text`` blocks (the template's ``**x**`` and backticks as bold
  and code styles) of at most 3,000 characters, split on line breaks where possible, followed by
  ``actions`` blocks of at most 25 buttons (``action_id`` = the neutral id, ``value`` = the same id,
  at most 2,000 characters);
* more than 50 blocks are posted as several messages; `post` returns the first message's ``ts``
  and `edit` rewrites that first message only (cards are always small);
* every message carries a plain fallback ``text`` (``&``, ``<``, ``>`` as entities) and
  ``unfurl_links/unfurl_media=False``.

Images (``Rendered.image``, a PNG; today the consensus chart at vote close), in `post` and
`send_direct`, with Slack's current upload flow (what slack_sdk's ``files_upload_v2`` does, spelled
out so that every step's failure maps onto a `DeliveryError`):

1. ``files.getUploadURLExternal`` (filename, length, ``alt_txt`` = the plain text) and the POST of
   the bytes to the returned ``upload_url``: nothing is visible yet, so a failure here (a 403, a
   ``missing_scope`` without ``files:write``, a long 429) raises with the channel untouched, and the
   relay sends the text alone at once (a picture never holds a channel back);
2. ``chat.postMessage`` with the text as Block Kit, as for any message: its ``ts`` is the message
   id `post` returns (``files.completeUploadExternal`` answers with the file, never a message ``ts``:
   Slack shares files asynchronously);
3. ``files.completeUploadExternal`` with ``channel_id``: the picture appears right below its text.

Why not ``initial_comment`` (one message): it takes no buttons or Block Kit sections, and yields no
``ts`` to edit. The price of two messages: if 3 fails (``not_in_channel``: files need the bot in the
channel; a long 429), the text is already shown, so `post` logs it and returns the text's ``ts``: the
text stays without its picture, and nothing is remembered between attempts or processes.

Slack has no idempotency key for ``chat.postMessage``, so ``key`` is not used: a post the relay
repeats after a crash (accepted by Slack, not yet recorded) shows twice (see ARCHITECTURE.md).

Editing a message that was posted with an image (`edit` on the returned ``ts``) rewrites the text
message only; the shared picture stays as it was (Slack cannot swap a shared file's contents), so a
changed chart has to be posted anew. Ephemeral replies (`post_private`) cannot carry uploaded files:
their image is left out and the text, which describes it, is shown alone.

User text never goes through mrkdwn. User values arrive marked by `escape` and become rich-text
``text`` elements of their own, which Slack shows literally: ``*Idea 9*``, ``> quote``,
``<!channel>``, ``<@U…>``, ``<!subteam^…>``, ``<https://…|…>`` and ``:shortcode:`` read as typed and
trigger nothing, and nothing a person types can take the bold of the bot's own labels (Slack
mrkdwn has no backslash escape, and a zero-width character would hide in the text).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.proxy_env_variable_loader import load_http_proxy_from_env
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.internal_utils import get_user_agent

from bot.messages import Attachment, Block, Button, Rendered
from bot.ports import DeliveryError
from bot.refs import ConversationRef, Platform
from bot.sanitize import strip_invisible

from .oauth_store import NotInstalled, Tokens

log = logging.getLogger("convene.slack.port")

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_ACTIONS_ELEMENTS = 25
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_FALLBACK_TEXT = 3000
# Retry-After waits longer than this are not slept through inside the relay: the row goes back to
# the outbox with ``retry_after`` instead, so one slow channel does not hold up the others.
MAX_INLINE_RETRY_WAIT = 5.0
MAX_ALT_TEXT = 1000  # files.getUploadURLExternal: alt_txt_too_large beyond this
UPLOAD_ATTEMPTS = 3  # POSTs of a file's bytes, counting retries after a short Retry-After

# A response_url POST as slack_sdk's AsyncWebhookClient makes it: its headers, the proxy named in the
# environment, and one retry (after its first backoff) when the pooled connection was dropped.
_RESPOND_HEADERS = {"Content-Type": "application/json;charset=utf-8", "User-Agent": get_user_agent()}
_PROXY = load_http_proxy_from_env()
_DROPPED = (aiohttp.ServerConnectionError, aiohttp.ClientOSError)  # ServerDisconnectedError is one
RESPOND_RETRY_WAIT = 0.5

# Errors that will not go away by retrying: the token, the channel or the payload is wrong.
PERMANENT_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "access_denied",
        "not_allowed_token_type",
        "ekm_access_denied",
        "not_in_channel",
        "channel_not_found",
        "is_archived",
        "user_not_in_channel",
        "user_not_found",
        "cannot_dm_bot",
        "invalid_blocks",
        "invalid_arguments",
        "msg_too_long",
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "file_uploads_disabled",
        "file_uploads_except_images_disabled",
        "file_type_not_allowed",
        "file_upload_size_restricted",
        "alt_txt_too_large",
    }
)
# Ephemeral delivery in a channel the bot is not in: the response_url still works (slash commands
# typed in channels the app was never added to, or in someone else's DM).
_EPHEMERAL_FALLBACK_ERRORS = frozenset({"not_in_channel", "channel_not_found", "user_not_in_channel"})


class BoundedRateLimitRetryHandler(AsyncRateLimitErrorRetryHandler):
    """Retries a 429 after its Retry-After, but only for short waits (see MAX_INLINE_RETRY_WAIT)."""

    def __init__(self, max_retry_count: int = 2, max_wait: float = MAX_INLINE_RETRY_WAIT) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = _retry_after(response.headers)
        return wait is None or wait <= self.max_wait


def _retry_after(headers: Any) -> float | None:
    if not headers:
        return None
    for key, value in dict(headers).items():
        if str(key).lower() == "retry-after":
            raw = value[0] if isinstance(value, list | tuple) and value else value
            try:
                return max(0.0, float(str(raw)))
            except ValueError:
                return None
    return None


def make_client(
    token: str, base_url: str, *, retry_handlers: list[AsyncRetryHandler] | None = None
) -> AsyncWebClient:
    """An AsyncWebClient aimed at ``base_url`` that honours short Retry-After waits."""
    handlers: list[AsyncRetryHandler] = (
        retry_handlers if retry_handlers is not None else [BoundedRateLimitRetryHandler()]
    )
    return AsyncWebClient(token=token or None, base_url=base_url, retry_handlers=handlers)


# --- rendering ----------------------------------------------------------------------------------

# `escape` wraps each user value in two noncharacters (removed from the value itself, and never in
# canonical text) so that rendering can tell the template's own markup from what people typed.
USER_START, USER_END = "\ufdd0", "\ufdd1"
_NEUTRAL = re.compile("(\ufdd0|\ufdd1|\\*\\*|`)")
_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_NO_CUT_BEFORE = re.compile("[\u200c\u200d\ufe0e\ufe0f\u20e3\U0001f3fb-\U0001f3ff]")


def escape(text: str) -> str:
    """User text, marked to stay literal: `runs` gives it its own rich-text elements, in which Slack
    parses nothing (no mrkdwn, mention, link, emoji code or quote), so it can never look like the
    bot's own bold labels. Hidden characters go, whether or not the value was canonical."""
    return USER_START + strip_invisible(text) + USER_END  # which removes noncharacters too


@dataclass(frozen=True, slots=True)
class Run:
    """A piece of text in one style."""

    text: str
    bold: bool = False
    code: bool = False


def runs(text: str) -> list[Run]:
    """Neutral markup as styled runs. Only the template's own ``**`` and backticks set bold and code;
    a user value (between the marks `escape` adds) is literal and takes the style around it."""
    out: list[Run] = []
    bold = code = user = False
    for piece in _NEUTRAL.split(text):
        if piece in (USER_START, USER_END):
            user = piece == USER_START
        elif piece == "**" and not user:
            bold = not bold
        elif piece == "`" and not user:
            code = not code
        elif piece:
            if out and (out[-1].bold, out[-1].code) == (bold, code):
                out[-1] = Run(out[-1].text + piece, bold, code)
            else:
                out.append(Run(piece, bold, code))
    return out


def plain(text: str) -> str:
    """The neutral markup as plain text (plain_text objects, fallbacks), marks and markers removed."""
    return "".join(r.text for r in runs(text))


def entities(text: str) -> str:
    """``&``, ``<`` and ``>`` as Slack's entities: in a mrkdwn field (the message fallback ``text``)
    nothing then mentions or links."""
    return text.translate(_ENTITIES)


def _cuts(text: str, limit: int) -> list[tuple[int, int]]:
    """Spans of at most ``limit`` characters, cut at line breaks, else spaces, else hard (never inside
    an emoji sequence); the whitespace at a cut is dropped."""
    spans: list[tuple[int, int]] = []
    start, n = 0, len(text)
    while n - start > limit:
        window = text[start : start + limit]
        cut = window.rfind("\n")
        if cut < limit // 2:
            cut = window.rfind(" ")
        if cut < limit // 2:
            cut = limit
            while cut > limit // 2 and _NO_CUT_BEFORE.match(text, start + cut):
                cut -= 1
        end = start + cut
        while end > start and text[end - 1] in " \n":
            end -= 1
        if end > start:
            spans.append((start, end))
        start += cut
        while start < n and text[start] in " \n":
            start += 1
    while n > start and text[n - 1] in " \n":
        n -= 1
    if n > start:
        spans.append((start, n))
    return spans


def _slice(styled: list[Run], start: int, end: int) -> list[Run]:
    out, at = [], 0
    for r in styled:
        low, high = max(start, at), min(end, at + len(r.text))
        if low < high:
            out.append(Run(r.text[low - at : high - at], r.bold, r.code))
        at += len(r.text)
    return out


def _rich_text(styled: list[Run]) -> dict[str, Any]:
    elements = []
    for r in styled:
        element: dict[str, Any] = {"type": "text", "text": r.text}
        style = {k: True for k, on in (("bold", r.bold), ("code", r.code)) if on}
        if style:
            element["style"] = style
        elements.append(element)
    return {"type": "rich_text", "elements": [{"type": "rich_text_section", "elements": elements}]}


def text_blocks(styled: list[Run], limit: int = MAX_SECTION_TEXT) -> list[dict[str, Any]]:
    """``rich_text`` blocks of at most ``limit`` characters each (the limit of a section's text)."""
    whole = "".join(r.text for r in styled)
    return [_rich_text(_slice(styled, a, b)) for a, b in _cuts(whole, limit)]


def literal_blocks(text: str) -> list[dict[str, Any]]:
    """Text whose user parts cannot be told apart (a form intro the core rendered whole): every
    character literal, the neutral bold markers dropped."""
    return text_blocks([Run(strip_invisible(text).replace("**", ""))])


def block_text(block: dict[str, Any]) -> str:
    """The plain text of a block built here (rich_text), for fallbacks."""
    sections = block.get("elements", []) if block.get("type") == "rich_text" else []
    return "".join(el.get("text", "") for s in sections for el in s.get("elements", []))


def _button(b: Button) -> dict[str, Any]:
    el: dict[str, Any] = {
        "type": "button",
        "action_id": b.action_id,
        "value": b.action_id[:MAX_BUTTON_VALUE],
        "text": {"type": "plain_text", "text": plain(b.label)[:MAX_BUTTON_TEXT] or "·", "emoji": True},
    }
    if b.style in ("primary", "danger"):
        el["style"] = b.style
    return el


def block_kit(block: Block) -> list[dict[str, Any]]:
    """One neutral block as Slack blocks (rich text, then actions)."""
    out = text_blocks(runs(block.text))
    buttons = [_button(b) for b in block.buttons]
    for i in range(0, len(buttons), MAX_ACTIONS_ELEMENTS):
        out.append({"type": "actions", "elements": buttons[i : i + MAX_ACTIONS_ELEMENTS]})
    return out


def render_messages(message: Rendered) -> list[tuple[str, list[dict[str, Any]]]]:
    """(fallback text, blocks) per Slack message; usually one, more when over 50 blocks."""
    blocks = [b for block in message.blocks for b in block_kit(block)]
    if not blocks:
        return [(" ", [])]
    out = []
    for i in range(0, len(blocks), MAX_BLOCKS):
        chunk = blocks[i : i + MAX_BLOCKS]
        fallback = entities("\n\n".join(t for t in map(block_text, chunk) if t))
        out.append((fallback[:MAX_FALLBACK_TEXT] or " ", chunk))
    return out


# --- the port -----------------------------------------------------------------------------------


class SlackChatPort:
    """ChatPort for Slack. ``client`` must carry the bot token and point at ``api_base_url``."""

    platform: Platform = Platform.SLACK

    def __init__(self, client: AsyncWebClient, *, pool: bool = True, tokens: Tokens | None = None) -> None:
        self.client = client
        self.pool = pool
        # OAuth mode: each workspace's own bot token (`adapters.slack.oauth`); None: the client's token.
        self.tokens = tokens
        self._own_session: aiohttp.ClientSession | None = None

    def _session(self) -> None:
        """One pooled HTTP session for every call (slack_sdk opens a new one per call otherwise);
        created lazily, inside the running loop. Close it with `aclose`."""
        if self.pool and (self.client.session is None or self.client.session.closed):
            self._own_session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.client.timeout),
                # Slack's Web API and response URLs set no cookie we need: no jar to match per call.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            self.client.session = self._own_session

    async def aclose(self) -> None:
        """Close the pooled session (call at shutdown)."""
        if self._own_session is not None and not self._own_session.closed:
            await self._own_session.close()
        self._own_session = None

    def escape(self, text: str) -> str:
        return escape(text)

    async def post(self, to: ConversationRef, message: Rendered, *, key: str | None = None) -> str:
        return await self._post(to.workspace_id, to.channel_id, message)

    async def edit(self, to: ConversationRef, message_id: str, message: Rendered) -> None:
        """Rewrites the text (first message); an image posted with it is left as it was."""
        text, blocks = render_messages(message)[0]
        await self._call(
            "chat_update", to.workspace_id, channel=to.channel_id, ts=message_id, text=text, blocks=blocks
        )

    async def post_private(
        self, to: ConversationRef, user_id: str, message: Rendered, reply_handle: str | None
    ) -> None:
        """Ephemeral; an image is left out (ephemeral messages cannot carry uploaded files)."""
        if message.image is not None:
            log.debug("slack: an ephemeral reply cannot carry an image; sent the text alone")
        for text, blocks in render_messages(message):
            try:
                await self._call(
                    "chat_postEphemeral",
                    to.workspace_id,
                    channel=to.channel_id,
                    user=user_id,
                    text=text,
                    blocks=blocks,
                )
            except DeliveryError as err:
                if reply_handle and err.reason in _EPHEMERAL_FALLBACK_ERRORS:
                    await self._respond(reply_handle, text, blocks)
                else:
                    raise

    async def respond(self, response_url: str, message: Rendered, *, replace: bool = False) -> None:
        """Ephemeral, through an interaction's ``response_url`` (not rate-limited per workspace as
        chat.postEphemeral is): a deck card in place of the ephemeral message clicked (``replace``),
        else new ephemeral messages (also the one way back to a sender whose ids could not be read).
        Never used to replace a public message."""
        if replace:
            text, blocks = render_messages(message)[0]
            await self._respond(response_url, text, blocks, replace=True)
            return
        for text, blocks in render_messages(message):
            await self._respond(response_url, text, blocks)

    async def send_direct(
        self, workspace_id: str, user_id: str, message: Rendered, *, key: str | None = None
    ) -> str:
        opened = await self._call("conversations_open", workspace_id, users=user_id)
        channel = opened.get("channel", {}).get("id") if isinstance(opened.get("channel"), dict) else None
        if not isinstance(channel, str) or not channel:
            raise DeliveryError("conversations.open returned no channel")
        return await self._post(workspace_id, channel, message)

    async def _post(self, team: str, channel: str, message: Rendered) -> str:
        """The text as one or more messages, then the image if any (module docstring); returns the
        first message's ``ts``."""
        pieces = render_messages(message)
        if message.image is None:
            return await self._post_pieces(team, channel, pieces)
        image = message.image
        file_id = await self._upload(team, image, alt_text=pieces[0][0])
        first = await self._post_pieces(team, channel, pieces)
        try:
            await self._call(
                "files_completeUploadExternal",
                team,
                files=[{"id": file_id, "title": image.filename}],
                channel_id=channel,
            )
        except DeliveryError as err:
            # The text is shown: raising would make the relay post it again. It stays alone.
            log.warning("slack: a picture could not be shared below its text (%s); left out", err.reason)
        return first

    async def _post_pieces(
        self, team: str, channel: str, pieces: list[tuple[str, list[dict[str, Any]]]]
    ) -> str:
        first: str | None = None
        for text, blocks in pieces:
            ts = await self._post_message(team, channel, text, blocks)
            first = first or ts
        assert first is not None
        return first

    async def _upload(self, team: str, image: Attachment, *, alt_text: str) -> str:
        """Steps 1 and 2 of an image post: an upload URL, then the bytes. Returns the file id."""
        data = await self._call(
            "files_getUploadURLExternal",
            team,
            filename=image.filename,
            length=len(image.data),
            alt_txt=alt_text.strip()[:MAX_ALT_TEXT] or None,
        )
        url, file_id = data.get("upload_url"), data.get("file_id")
        if not isinstance(url, str) or not url or not isinstance(file_id, str) or not file_id:
            raise DeliveryError("files.getUploadURLExternal returned no upload_url")
        await self._upload_bytes(url, image.data)
        return file_id

    async def _upload_bytes(self, url: str, data: bytes) -> None:
        """POST the bytes to an upload URL (pre-signed: no token). A 429 with a short Retry-After is
        waited out here, a longer one goes back to the outbox; 401/403 and other 4xx are permanent,
        except an expired URL (404/410), which a retry replaces with a fresh one."""
        self._session()
        shared = self.client.session
        session = shared if shared is not None and not shared.closed else aiohttp.ClientSession()
        try:
            for attempt in range(1, UPLOAD_ATTEMPTS + 1):
                try:
                    async with session.post(
                        url,
                        data=data,
                        headers={"Content-Type": "application/octet-stream"},
                        timeout=aiohttp.ClientTimeout(total=self.client.timeout),
                    ) as resp:
                        status, headers = resp.status, resp.headers
                        await resp.read()
                except (aiohttp.ClientError, OSError, TimeoutError) as err:
                    raise DeliveryError(f"file upload: network: {type(err).__name__}") from None
                if status == 200:
                    return
                if status == 429:
                    wait = _retry_after(headers)
                    wait = 1.0 if wait is None else wait
                    if wait <= MAX_INLINE_RETRY_WAIT and attempt < UPLOAD_ATTEMPTS:
                        await asyncio.sleep(wait)
                        continue
                    raise DeliveryError("file upload: ratelimited", retry_after=wait)
                permanent = 400 <= status < 500 and status not in (404, 408, 410)
                raise DeliveryError(f"file upload: HTTP {status}", permanent=permanent)
        finally:
            if session is not shared:
                await session.close()

    # --- plumbing ---------------------------------------------------------------------------

    async def _post_message(self, team: str, channel: str, text: str, blocks: list[dict[str, Any]]) -> str:
        data = await self._call(
            "chat_postMessage",
            team,
            channel=channel,
            text=text,
            blocks=blocks,
            unfurl_links=False,
            unfurl_media=False,
        )
        ts = data.get("ts")
        if not isinstance(ts, str):
            raise DeliveryError("chat.postMessage returned no ts")
        return ts

    async def _call(self, method: str, team: str, **kwargs: Any) -> dict[str, Any]:
        """One Web API call in ``team``'s name: with its own bot token in OAuth mode (a workspace that
        removed the app fails for good, with no call), else with the client's token."""
        if not kwargs.get("blocks", True):
            kwargs.pop("blocks")
        if self.tokens is not None:
            try:
                kwargs["token"] = await self.tokens.for_team(team)
            except DeliveryError:
                raise
            except NotInstalled:
                raise DeliveryError(
                    "no installation in this workspace (the app was removed)", permanent=True
                ) from None
            except Exception as err:  # the installation store (the database) could not be read
                raise DeliveryError(f"installation store: {type(err).__name__}") from None
        self._session()
        try:
            response = await getattr(self.client, method)(**kwargs)
        except SlackApiError as err:
            raise _delivery_error(err) from None
        except (aiohttp.ClientError, OSError, TimeoutError) as err:
            raise DeliveryError(f"network: {type(err).__name__}") from None
        data = response.data
        return data if isinstance(data, dict) else {}

    async def _respond(
        self, response_url: str, text: str, blocks: list[dict[str, Any]], *, replace: bool = False
    ) -> None:
        """POST to a response_url: the body and headers slack_sdk's AsyncWebhookClient sends (and its
        one retry after a dropped connection), on the pooled session, without building a client, a
        retry request and a response object per card (the deck's hot path)."""
        body: dict[str, Any] = {"text": text}
        if blocks:
            body["blocks"] = blocks
        if not replace:
            body["response_type"] = "ephemeral"
        body["replace_original"] = replace
        data = json.dumps(body).encode()
        self._session()
        shared = self.client.session
        session = shared if shared is not None and not shared.closed else aiohttp.ClientSession()
        try:
            for attempt in (1, 2):
                try:
                    async with session.post(
                        response_url, data=data, headers=_RESPOND_HEADERS, proxy=_PROXY
                    ) as resp:
                        status, headers = resp.status, resp.headers
                        await resp.read()
                    break
                except _DROPPED as err:
                    if attempt == 2:
                        raise DeliveryError(f"response_url: {type(err).__name__}") from None
                    await asyncio.sleep(RESPOND_RETRY_WAIT)
                except Exception as err:
                    raise DeliveryError(f"response_url: {type(err).__name__}") from None
        finally:
            if session is not shared:
                await session.close()
        if status == 429:
            raise DeliveryError("response_url: ratelimited", retry_after=_retry_after(headers))
        if status >= 400:
            # An expired or used-up response_url never comes back.
            raise DeliveryError(f"response_url: HTTP {status}", permanent=status < 500)


def _delivery_error(err: SlackApiError) -> DeliveryError:
    response = err.response
    status = getattr(response, "status_code", 0) or 0
    data = getattr(response, "data", None)
    code = data.get("error") if isinstance(data, dict) else None
    reason = str(code or f"HTTP {status}")
    if status == 429 or code == "ratelimited":
        wait = _retry_after(getattr(response, "headers", None))
        return DeliveryError(reason, retry_after=wait if wait is not None else 1.0)
    if status in (401, 403) or code in PERMANENT_ERRORS:
        return DeliveryError(reason, permanent=True)
    return DeliveryError(reason)
