"""A bolt middleware that refuses payloads of a shape Slack never sends, before bolt reads them.

bolt's listener matchers and argument builders index payloads directly (``body["actions"][0]``,
``body["view"]["callback_id"]``, ``body["event"]["type"]``, a regex over ``action_id``), so a
signed payload with an empty ``actions``, a string ``view`` or an int ``action_id`` ended in an
HTTP 500 and a traceback from inside bolt. `PayloadShape` runs first (bolt's ``before_authorize``
slot: after the signature check, before authorization and every built-in that reads the body) and
answers such a payload with a 400, after telling its sender where Slack gives a way to.

One concern only: the *shape* bolt and the listeners rely on. What the values mean (ids, the
metadata the bot wrote, the text) is checked by the listeners, which refuse it privately.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

# Interactivity payloads bolt's matchers read ``callback_id`` of (see slack_bolt.request.payload_utils).
_BY_CALLBACK_ID = frozenset(
    {
        "interactive_message",
        "dialog_submission",
        "dialog_cancellation",
        "dialog_suggestion",
        "workflow_step_edit",
        "shortcut",
        "message_action",
    }
)
_VIEW_PAYLOADS = frozenset({"view_submission", "view_closed"})


def _optional(container: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> bool:
    value = container.get(key)
    return value is None or isinstance(value, kind)


def _action_problem(action: Any) -> str | None:
    if not isinstance(action, Mapping):
        return "an action that is not an object"
    if not isinstance(action.get("action_id"), str):
        return "an action without a string action_id"
    if not _optional(action, "block_id", str):
        return "an action whose block_id is not a string"
    return None


def problem(body: Mapping[str, Any]) -> str | None:
    """None when bolt and the listeners can read ``body``, else what is wrong (for the log: it names
    fields, never values)."""
    if not _optional(body, "event", Mapping):  # bolt's IgnoringSelfEvents reads it on any payload
        return "an event that is not an object"
    if "command" in body:
        for key in ("command", "text", "user_id", "channel_id", "team_id", "trigger_id", "response_url"):
            if not _optional(body, key, str):
                return f"a slash command whose {key} is not a string"
        return None
    kind = body.get("type")
    if kind is None:
        return None if "ssl_check" in body else "a payload without a type"
    if not isinstance(kind, str):
        return "a type that is not a string"
    for key in ("user", "team", "channel", "container", "enterprise", "message", "state"):
        if not _optional(body, key, (Mapping, str) if key in ("team", "enterprise") else Mapping):
            return f"a {key} of the wrong kind"
    for key in ("trigger_id", "response_url", "api_app_id"):
        if not _optional(body, key, str):
            return f"a {key} that is not a string"
    if kind == "block_actions":
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions:
            return "block_actions without actions"
        for action in actions:
            if (why := _action_problem(action)) is not None:
                return why
    elif kind in _BY_CALLBACK_ID:
        if not isinstance(body.get("callback_id"), str):
            return f"{kind} without a string callback_id"
        actions = body.get("actions")
        if kind == "interactive_message" and (not isinstance(actions, list) or not actions):
            return "interactive_message without actions"
    elif kind == "block_suggestion":
        if (why := _action_problem(body)) is not None:
            return why
    elif kind in _VIEW_PAYLOADS:
        view = body.get("view")
        if not isinstance(view, Mapping):
            return f"{kind} without a view object"
        for key in ("callback_id", "type"):
            if not isinstance(view.get(key), str):
                return f"{kind} whose view has no string {key}"
        if not _optional(view, "state", Mapping) or not _optional(view, "blocks", list):
            return f"{kind} whose view state or blocks are of the wrong kind"
    elif kind == "event_callback":
        event = body.get("event")
        if not isinstance(event, Mapping) or not isinstance(event.get("type"), str):
            return "event_callback without an event object and its type"
        if not _optional(body, "event_id", str):
            return "event_callback whose event_id is not a string"
        for key in ("message", "previous_message"):
            if not _optional(event, key, Mapping):
                return f"an event whose {key} is not an object"
    elif kind == "url_verification" and not isinstance(body.get("challenge"), str):
        return "url_verification without a string challenge"
    return None


NO_RETRY = {"X-Slack-No-Retry": "1"}  # the same payload would be refused again; Slack retries events


def malformed(status: int = 400) -> BoltResponse:
    return BoltResponse(status=status, body={"error": "malformed request"}, headers=dict(NO_RETRY))


def acked_in_socket_mode(req: AsyncBoltRequest, resp: BoltResponse) -> BoltResponse:
    """Socket Mode acknowledges an envelope only on a 200; one left unacknowledged is retried and
    shown to the person as a failure, although they have been told. So a refusal is an empty 200
    there (an error inside a form, a 200 already, travels in the acknowledgement)."""
    if req.mode == "socket_mode" and resp.status != 200:
        return BoltResponse(status=200, body="")
    return resp


Answer = Callable[[Mapping[str, Any], str], BoltResponse]


class PayloadShape(AsyncMiddleware):
    """``AsyncApp(before_authorize=PayloadShape(answer))``: a payload of the wrong shape is answered
    by ``answer(body, reason)`` (a 400, or the error inside a form that can still show one), which
    also tells the sender where it can; it must not block."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse | None:
        body: Any = req.body  # typed a dict; a JSON body can be anything
        if not isinstance(body, Mapping):
            return acked_in_socket_mode(req, self.answer({}, "a payload that is not an object"))
        why = problem(body)
        if why is None:
            return await next()
        return acked_in_socket_mode(req, self.answer(body, why))
