"""Inbound Slack requests (what Slack sends *to* the app): signing and payload builders.

Each builder returns a `SlackInbound` holding both wire forms of one delivery:
  * HTTP mode: `body` bytes + `content_type` (+ retry headers), to be signed and POSTed;
  * Socket Mode: `envelope_type` + `payload` dict, for `FakeSlackWebAPI.socket_deliver`.

Shapes follow Slack's documented payloads (docs.slack.dev/interactivity/..., /apis/events-api/...).
When built through a `FakeSlackWebAPI` (``fake.payloads``), `trigger_id`s are registered with the
fake (so `views.open` accepts them for 3 s, once) and `response_url`s point at the fake.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import urlencode

EnvelopeType = Literal["slash_commands", "interactive", "events_api"]

JSON_CONTENT_TYPE = "application/json"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def signed_headers(signing_secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Slack's v0 request signature: HMAC-SHA256 over ``v0:{timestamp}:{raw body}``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + ts.encode() + b":" + body
    digest = hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


@dataclass(frozen=True)
class SlackWorkspace:
    """Identity of the fake workspace and app; shared by the fake server and the builders."""

    team_id: str = "T0CONVENE"
    team_domain: str = "convene-test"
    team_name: str = "Convene Test"
    enterprise_id: str | None = None
    api_app_id: str = "A0CONVENE"
    bot_user_id: str = "U0BOT"
    bot_id: str = "B0BOT"
    # The deprecated verification token that Slack still puts in payloads; apps must not trust it.
    verification_token: str = "fake-verification-token"


@dataclass(frozen=True)
class SlackInbound:
    """One delivery from Slack to the app, in both HTTP and Socket Mode form."""

    envelope_type: EnvelopeType
    payload: dict[str, Any]
    body: bytes
    content_type: str
    trigger_id: str | None = None
    response_url: str | None = None
    retry_num: int | None = None
    retry_reason: str | None = None
    extra_headers: Mapping[str, str] = field(default_factory=dict)

    def headers(self, signing_secret: str, timestamp: int | None = None) -> dict[str, str]:
        """Complete HTTP headers: content type, signature, and Events API retry headers if any."""
        out = {"Content-Type": self.content_type, **signed_headers(signing_secret, self.body, timestamp)}
        if self.retry_num is not None:
            out["X-Slack-Retry-Num"] = str(self.retry_num)
            out["X-Slack-Retry-Reason"] = self.retry_reason or "http_timeout"
        out.update(self.extra_headers)
        return out

    def bolt_request(self, signing_secret: str, timestamp: int | None = None) -> Any:
        """An `AsyncBoltRequest` for the no-socket fast path: ``await app.async_dispatch(req)``."""
        from slack_bolt.request.async_request import AsyncBoltRequest

        headers: dict[str, str | Sequence[str]] = dict(self.headers(signing_secret, timestamp))
        return AsyncBoltRequest(body=self.body.decode(), headers=headers)


class _Issuer(Protocol):
    """What the builders need from the fake server (implemented by `FakeSlackWebAPI`)."""

    def new_trigger_id(self) -> str: ...
    def new_response_url(
        self,
        *,
        channel: str | None = None,
        user: str | None = None,
        message_ts: str | None = None,
        ephemeral: bool = False,
    ) -> str: ...
    def new_ts(self) -> str: ...
    def register_view(self, view: dict[str, Any]) -> None: ...
    def register_message(self, channel: str, message: dict[str, Any]) -> None: ...


_counter = itertools.count(1)


def _slack_id(prefix: str) -> str:
    return prefix + secrets.token_hex(5).upper()


class SlackPayloads:
    """Builders for Slack's inbound payloads.

    Use ``fake.payloads`` so ids are registered with the fake. Standalone
    (``SlackPayloads()``) the trigger ids are unregistered and response_urls point at
    ``https://hooks.slack.invalid/`` (pytest-socket would block a call to them).
    """

    def __init__(self, workspace: SlackWorkspace | None = None, issuer: _Issuer | None = None) -> None:
        self.workspace = workspace or SlackWorkspace()
        self._issuer = issuer

    # ids -------------------------------------------------------------------------------------
    def _trigger_id(self) -> str:
        if self._issuer is not None:
            return self._issuer.new_trigger_id()
        return f"{next(_counter)}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"

    def _response_url(self, **origin: Any) -> str:
        """A response_url that knows its interaction's ``channel``, ``user`` and the message clicked
        (``message_ts``, ``ephemeral``), as Slack's do."""
        if self._issuer is not None:
            return self._issuer.new_response_url(**origin)
        return f"https://hooks.slack.invalid/commands/{self.workspace.team_id}/{next(_counter)}/x"

    def _ts(self) -> str:
        if self._issuer is not None:
            return self._issuer.new_ts()
        return f"{int(time.time())}.{next(_counter):06d}"

    def _team(self, team_id: str | None) -> dict[str, Any]:
        return {"id": team_id or self.workspace.team_id, "domain": self.workspace.team_domain}

    def _user(self, user_id: str, user_name: str, team_id: str | None) -> dict[str, Any]:
        return {
            "id": user_id,
            "username": user_name,
            "name": user_name,
            "team_id": team_id or self.workspace.team_id,
        }

    def _enterprise(self) -> dict[str, Any] | None:
        ent = self.workspace.enterprise_id
        return None if ent is None else {"id": ent, "name": "Fake Grid"}

    # slash commands --------------------------------------------------------------------------
    def slash_command(
        self,
        command: str = "/convene",
        text: str = "",
        *,
        user_id: str = "U0ALICE",
        user_name: str = "alice",
        team_id: str | None = None,
        channel_id: str = "C0GENERAL",
        channel_name: str = "general",
        trigger_id: str | None = None,
        response_url: str | None = None,
    ) -> SlackInbound:
        """A slash command: form-encoded over HTTP; the same fields as a dict in Socket Mode."""
        ws = self.workspace
        trigger_id = trigger_id or self._trigger_id()
        response_url = response_url or self._response_url(channel=channel_id, user=user_id)
        fields: dict[str, str] = {
            "token": ws.verification_token,
            "team_id": team_id or ws.team_id,
            "team_domain": ws.team_domain,
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": ws.api_app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id,
        }
        if ws.enterprise_id is not None:
            fields["enterprise_id"] = ws.enterprise_id
            fields["enterprise_name"] = "Fake Grid"
        return SlackInbound(
            envelope_type="slash_commands",
            payload=dict(fields),
            body=urlencode(fields).encode(),
            content_type=FORM_CONTENT_TYPE,
            trigger_id=trigger_id,
            response_url=response_url,
        )

    # interactivity ---------------------------------------------------------------------------
    def interactive(self, payload: dict[str, Any]) -> SlackInbound:
        """Wrap any interactivity payload: ``payload=<json>`` form body over HTTP."""
        return SlackInbound(
            envelope_type="interactive",
            payload=payload,
            body=urlencode({"payload": json.dumps(payload)}).encode(),
            content_type=FORM_CONTENT_TYPE,
            trigger_id=payload.get("trigger_id"),
            response_url=payload.get("response_url"),
        )

    def block_actions(
        self,
        action_id: str,
        value: str | None = None,
        *,
        block_id: str = "actions",
        action_type: str = "button",
        button_text: str = "Button",
        user_id: str = "U0ALICE",
        user_name: str = "alice",
        team_id: str | None = None,
        channel_id: str = "C0GENERAL",
        channel_name: str = "general",
        message_ts: str | None = None,
        message: dict[str, Any] | None = None,
        view: dict[str, Any] | None = None,
        state_values: dict[str, Any] | None = None,
        is_ephemeral: bool = False,
        extra_action: dict[str, Any] | None = None,
    ) -> SlackInbound:
        """A button click (or other action) in a message, or inside a modal if `view` is given.

        In a message, the message is registered with the fake so `chat.update` on
        ``(channel_id, message_ts)`` succeeds; in a modal, there is no channel or response_url.
        """
        ws = self.workspace
        action: dict[str, Any] = {
            "action_id": action_id,
            "block_id": block_id,
            "type": action_type,
            "action_ts": self._ts(),
        }
        if action_type == "button":
            action["text"] = {"type": "plain_text", "text": button_text, "emoji": True}
        if value is not None:
            action["value"] = value
        action.update(extra_action or {})
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": self._user(user_id, user_name, team_id),
            "api_app_id": ws.api_app_id,
            "token": ws.verification_token,
            "trigger_id": self._trigger_id(),
            "team": self._team(team_id),
            "enterprise": self._enterprise(),
            "is_enterprise_install": False,
            "state": {"values": state_values or {}},
            "actions": [action],
        }
        if view is not None:
            view = self._full_view(view)
            payload["container"] = {"type": "view", "view_id": view["id"]}
            payload["view"] = view
        else:
            ts = message_ts or self._ts()
            msg = message or {
                "type": "message",
                "user": ws.bot_user_id,
                "bot_id": ws.bot_id,
                "app_id": ws.api_app_id,
                "text": "message with a button",
                "ts": ts,
                "team": team_id or ws.team_id,
                "blocks": [],
            }
            msg = {**msg, "ts": ts}
            if self._issuer is not None and not is_ephemeral:
                self._issuer.register_message(channel_id, msg)
            payload["container"] = {
                "type": "message",
                "message_ts": ts,
                "channel_id": channel_id,
                "is_ephemeral": is_ephemeral,
            }
            payload["channel"] = {"id": channel_id, "name": channel_name}
            payload["message"] = msg
            payload["response_url"] = self._response_url(
                channel=channel_id, user=user_id, message_ts=ts, ephemeral=is_ephemeral
            )
        return self.interactive(payload)

    def _full_view(self, view: dict[str, Any]) -> dict[str, Any]:
        """A view as Slack echoes it back: ids, hash, state, app ids; registered with the fake."""
        ws = self.workspace
        view_id = view.get("id") or _slack_id("V")
        full: dict[str, Any] = {
            "id": view_id,
            "team_id": ws.team_id,
            "type": "modal",
            "blocks": [],
            "private_metadata": "",
            "callback_id": "",
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "title": {"type": "plain_text", "text": "Convene", "emoji": True},
            "clear_on_close": False,
            "notify_on_close": False,
            "close": None,
            "submit": None,
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": ws.api_app_id,
            "external_id": "",
            "app_installed_team_id": ws.team_id,
            "bot_id": ws.bot_id,
        }
        full.update(view)
        if self._issuer is not None:
            self._issuer.register_view(full)
        return full

    def view_submission(
        self,
        callback_id: str,
        values: Mapping[str, Mapping[str, str | dict[str, Any] | None]] | None = None,
        *,
        private_metadata: str = "",
        user_id: str = "U0ALICE",
        user_name: str = "alice",
        team_id: str | None = None,
        view_id: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
        title: str = "Convene",
        response_urls: list[dict[str, Any]] | None = None,
    ) -> SlackInbound:
        """A modal submit. `values` is ``{block_id: {action_id: value}}``; a str/None value becomes a
        ``plain_text_input`` state, a dict is used verbatim (e.g. ``{"type": "static_select",
        "selected_option": {...}}``)."""
        ws = self.workspace
        state: dict[str, dict[str, Any]] = {}
        for block_id, actions in (values or {}).items():
            state[block_id] = {
                action_id: (v if isinstance(v, dict) else {"type": "plain_text_input", "value": v})
                for action_id, v in actions.items()
            }
        view = {
            "callback_id": callback_id,
            "private_metadata": private_metadata,
            "state": {"values": state},
            "title": {"type": "plain_text", "text": title, "emoji": True},
            "submit": {"type": "plain_text", "text": "Submit", "emoji": True},
            "blocks": blocks if blocks is not None else _input_blocks_for(values or {}),
        }
        if view_id is not None:
            view["id"] = view_id
        payload: dict[str, Any] = {
            "type": "view_submission",
            "team": self._team(team_id),
            "user": self._user(user_id, user_name, team_id),
            "api_app_id": ws.api_app_id,
            "token": ws.verification_token,
            "trigger_id": self._trigger_id(),
            "view": self._full_view(view),
            "response_urls": response_urls or [],
            "is_enterprise_install": False,
            "enterprise": self._enterprise(),
        }
        return self.interactive(payload)

    def view_closed(
        self, callback_id: str, *, user_id: str = "U0ALICE", user_name: str = "alice"
    ) -> SlackInbound:
        """Sent only for modals opened with ``notify_on_close: true``."""
        ws = self.workspace
        payload: dict[str, Any] = {
            "type": "view_closed",
            "team": self._team(None),
            "user": self._user(user_id, user_name, None),
            "api_app_id": ws.api_app_id,
            "token": ws.verification_token,
            "view": self._full_view({"callback_id": callback_id}),
            "is_cleared": False,
            "is_enterprise_install": False,
            "enterprise": self._enterprise(),
        }
        return self.interactive(payload)

    # events ----------------------------------------------------------------------------------
    def event_callback(
        self,
        event: dict[str, Any],
        event_id: str | None = None,
        *,
        retry_num: int | None = None,
        retry_reason: str | None = None,
        team_id: str | None = None,
        is_ext_shared_channel: bool = False,
    ) -> SlackInbound:
        """An Events API delivery (JSON). Pass ``retry_num``/``retry_reason`` to simulate a redelivery:
        HTTP gets ``X-Slack-Retry-Num``/``-Reason`` headers, Socket Mode ``retry_attempt``/``reason``."""
        ws = self.workspace
        team = team_id or ws.team_id
        now = int(time.time())
        payload: dict[str, Any] = {
            "token": ws.verification_token,
            "team_id": team,
            "context_team_id": team,
            "context_enterprise_id": ws.enterprise_id,
            "api_app_id": ws.api_app_id,
            "event": {"event_ts": f"{now}.000100", **event},
            "type": "event_callback",
            "event_id": event_id or _slack_id("Ev"),
            "event_time": now,
            "authorizations": [
                {
                    "enterprise_id": ws.enterprise_id,
                    "team_id": team,
                    "user_id": ws.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": is_ext_shared_channel,
            "event_context": f"4-{secrets.token_hex(12)}",
        }
        return SlackInbound(
            envelope_type="events_api",
            payload=payload,
            body=json.dumps(payload).encode(),
            content_type=JSON_CONTENT_TYPE,
            retry_num=retry_num,
            retry_reason=retry_reason,
        )

    def message_event(
        self,
        text: str,
        *,
        user_id: str = "U0ALICE",
        channel_id: str = "C0GENERAL",
        channel_type: str = "channel",
        thread_ts: str | None = None,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str | None = None,
        **extra: Any,
    ) -> SlackInbound:
        """A ``message`` event (pass ``bot_id=...``/``subtype=...`` via `extra` for bot echoes)."""
        event: dict[str, Any] = {
            "type": "message",
            "user": user_id,
            "text": text,
            "ts": self._ts(),
            "channel": channel_id,
            "channel_type": channel_type,
            "team": self.workspace.team_id,
            **extra,
        }
        if thread_ts is not None:
            event["thread_ts"] = thread_ts
        return self.event_callback(event, event_id, retry_num=retry_num, retry_reason=retry_reason)

    def url_verification(self, challenge: str = "fake-challenge") -> SlackInbound:
        """HTTP-only handshake when the Events URL is configured."""
        payload = {
            "token": self.workspace.verification_token,
            "challenge": challenge,
            "type": "url_verification",
        }
        return SlackInbound(
            envelope_type="events_api",
            payload=payload,
            body=json.dumps(payload).encode(),
            content_type=JSON_CONTENT_TYPE,
        )


def _input_blocks_for(values: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Plausible input blocks matching submitted state, so the echoed view is self-consistent."""
    return [
        {
            "type": "input",
            "block_id": block_id,
            "label": {"type": "plain_text", "text": block_id[:2000] or "Input"},
            "element": {"type": "plain_text_input", "action_id": action_id},
        }
        for block_id, actions in values.items()
        for action_id in actions
    ]
