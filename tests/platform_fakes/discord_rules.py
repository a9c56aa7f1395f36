"""Discord's limits and error bodies, as enforced by the fake Discord.

Numbers from discord-api-docs (platform-testing.md §5). Error bodies mimic the real
ones: ``{"message", "code"}`` plus, for 50035, the nested ``errors`` tree whose leaves
are ``{"_errors": [{"code", "message"}]}``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from tests.platform_fakes.discord_payloads import FLAG_COMPONENTS_V2, JSON

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
MAX_ACTION_ROWS = 5
MAX_ROW_BUTTONS = 5
MAX_V2_COMPONENTS = 40
MAX_CUSTOM_ID = 100
MAX_NONCE = 25  # characters of a message nonce
MAX_MODAL_TITLE = 45
MAX_MODAL_COMPONENTS = 5
MAX_LABEL = 45
MAX_TEXT_INPUT_LENGTH = 4000
MAX_UPLOAD = 10 * 1024 * 1024  # bytes per request, for bots in servers without boosts

# Error codes (discord-api-docs topics/opcodes-and-status-codes.mdx).
UNKNOWN_CHANNEL = 10003
UNKNOWN_MESSAGE = 10008
UNKNOWN_WEBHOOK = 10015
UNKNOWN_INTERACTION = 10062
ENTITY_TOO_LARGE = 40005
ALREADY_ACKNOWLEDGED = 40060
CANNOT_EDIT_OTHERS_MESSAGE = 50005
EMPTY_MESSAGE = 50006
CANNOT_DM_USER = 50007
INVALID_WEBHOOK_TOKEN = 50027
INVALID_FORM_BODY = 50035


def error(code: int, message: str) -> JSON:
    return {"message": message, "code": code}


@dataclass(frozen=True)
class FieldError:
    path: tuple[str | int, ...]
    code: str
    message: str


def invalid_form_body(errors: Sequence[FieldError]) -> JSON:
    tree: dict[str, Any] = {}
    for e in errors:
        node = tree
        for part in e.path:
            node = node.setdefault(str(part), {})
        node.setdefault("_errors", []).append({"code": e.code, "message": e.message})
    return {"message": "Invalid Form Body", "code": INVALID_FORM_BODY, "errors": tree}


def _too_long(path: tuple[str | int, ...], limit: int) -> FieldError:
    return FieldError(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def _embed_chars(embed: JSON) -> int:
    n = len(embed.get("title") or "") + len(embed.get("description") or "")
    n += len((embed.get("footer") or {}).get("text") or "")
    n += len((embed.get("author") or {}).get("name") or "")
    for f in embed.get("fields") or []:
        n += len(f.get("name") or "") + len(f.get("value") or "")
    return n


def _walk(
    components: Sequence[JSON], path: tuple[str | int, ...]
) -> Iterator[tuple[JSON, tuple[str | int, ...]]]:
    """Every component, recursively (rows, Label.component, containers, accessories)."""
    for i, c in enumerate(components):
        here = (*path, i)
        yield c, here
        if isinstance(c.get("components"), list):
            yield from _walk(c["components"], (*here, "components"))
        for key in ("component", "accessory"):
            if isinstance(c.get(key), dict):
                sub = c[key]
                yield sub, (*here, key)
                if isinstance(sub.get("components"), list):
                    yield from _walk(sub["components"], (*here, key, "components"))


def _component_errors(components: Sequence[JSON], path: tuple[str | int, ...]) -> list[FieldError]:
    errs: list[FieldError] = []
    for c, p in _walk(components, path):
        cid = c.get("custom_id")
        if isinstance(cid, str) and not 1 <= len(cid) <= MAX_CUSTOM_ID:
            errs.append(_too_long((*p, "custom_id"), MAX_CUSTOM_ID))
        if c.get("type") == 1 and len(c.get("components") or []) > MAX_ROW_BUTTONS:
            errs.append(_too_long((*p, "components"), MAX_ROW_BUTTONS))
        if c.get("type") in (4, 18) and len(c.get("label") or "") > MAX_LABEL:
            errs.append(_too_long((*p, "label"), MAX_LABEL))
        if c.get("type") == 4 and int(c.get("max_length") or 0) > MAX_TEXT_INPUT_LENGTH:
            errs.append(
                FieldError(
                    (*p, "max_length"),
                    "NUMBER_TYPE_MAX",
                    f"int value should be less than or equal to {MAX_TEXT_INPUT_LENGTH}.",
                )
            )
    return errs


def message_errors(body: JSON, path: tuple[str | int, ...] = ()) -> list[FieldError]:
    """Validate a create/edit-message body (channel message, follow-up, callback data)."""
    errs: list[FieldError] = []
    content = body.get("content")
    if isinstance(content, str) and len(content) > MAX_CONTENT:
        errs.append(_too_long((*path, "content"), MAX_CONTENT))
    embeds = body.get("embeds") or []
    if len(embeds) > MAX_EMBEDS:
        errs.append(_too_long((*path, "embeds"), MAX_EMBEDS))
    elif sum(_embed_chars(e) for e in embeds) > MAX_EMBED_TOTAL:
        errs.append(
            FieldError(
                (*path, "embeds"),
                "MAX_EMBED_SIZE_EXCEEDED",
                f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}",
            )
        )
    components = body.get("components") or []
    if int(body.get("flags") or 0) & FLAG_COMPONENTS_V2:
        if sum(1 for _ in _walk(components, ())) > MAX_V2_COMPONENTS:
            errs.append(_too_long((*path, "components"), MAX_V2_COMPONENTS))
    elif len(components) > MAX_ACTION_ROWS:
        errs.append(_too_long((*path, "components"), MAX_ACTION_ROWS))
    errs += _component_errors(components, (*path, "components"))
    am = body.get("allowed_mentions")
    if isinstance(am, dict):
        parse = am.get("parse") or []
        for kind in ("users", "roles"):
            if kind in parse and am.get(kind):
                errs.append(
                    FieldError(
                        (*path, "allowed_mentions"),
                        "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                        f'parse:["{kind}"] and {kind}: [ids...] are mutually exclusive.',
                    )
                )
    return errs


def is_empty_message(body: JSON, *, has_files: bool) -> bool:
    return not (
        body.get("content")
        or body.get("embeds")
        or body.get("components")
        or body.get("sticker_ids")
        or has_files
    )


def modal_errors(data: JSON) -> list[FieldError]:
    errs: list[FieldError] = []
    if len(data.get("title") or "") > MAX_MODAL_TITLE:
        errs.append(_too_long(("data", "title"), MAX_MODAL_TITLE))
    cid = data.get("custom_id") or ""
    if not 1 <= len(cid) <= MAX_CUSTOM_ID:
        errs.append(_too_long(("data", "custom_id"), MAX_CUSTOM_ID))
    components = data.get("components") or []
    if not 1 <= len(components) <= MAX_MODAL_COMPONENTS:
        errs.append(
            FieldError(
                ("data", "components"),
                "BASE_TYPE_BAD_LENGTH",
                f"Must be between 1 and {MAX_MODAL_COMPONENTS} in length.",
            )
        )
    errs += _component_errors(components, ("data", "components"))
    return errs


# ----------------------------------------------------------------------------- mentions

_USER = re.compile(r"<@!?(\d+)>")
_ROLE = re.compile(r"<@&(\d+)>")
_EVERYONE = re.compile(r"@(everyone|here)")


@dataclass(frozen=True)
class Pings:
    """Who a message would notify, given its content and ``allowed_mentions``."""

    users: frozenset[str]
    roles: frozenset[str]
    everyone: bool

    @property
    def any(self) -> bool:
        return bool(self.users or self.roles or self.everyone)


def pings(body: JSON, *, default_parse: Sequence[str]) -> Pings:
    """Discord's allowed-mentions semantics (resources/message.mdx). ``default_parse``
    applies when ``allowed_mentions`` is absent: ``("users", "roles", "everyone")`` for
    channel messages, ``("users",)`` for interaction responses and webhooks (per the
    design doc). Embeds never ping, so only ``content`` is parsed."""
    content = body.get("content") or ""
    am = body.get("allowed_mentions")
    if am is None:
        parse, allow_users, allow_roles = set(default_parse), set(), set()
    else:
        parse = set(am.get("parse") or [])
        allow_users = {str(u) for u in am.get("users") or []}
        allow_roles = {str(r) for r in am.get("roles") or []}
    users = {u for u in _USER.findall(content) if "users" in parse or u in allow_users}
    roles = {r for r in _ROLE.findall(content) if "roles" in parse or r in allow_roles}
    everyone = "everyone" in parse and bool(_EVERYONE.search(content))
    return Pings(frozenset(users), frozenset(roles), everyone)
