"""Block Kit and modal validation for the fake Slack, mirroring limits Slack enforces server-side.

Each function returns a list of problems in Slack's own `response_metadata.messages` style
(``"[ERROR] ... [json-pointer:/blocks/0/text/text]"``); an empty list means valid. The fake turns
a non-empty list into ``invalid_blocks`` (messages) or ``invalid_arguments`` (views).

Limits come from the Block Kit reference (docs.slack.dev/reference/block-kit) and
the design notes (platform-testing.md §5). Cumulative-text limits (``msg_blocks_too_long``) are
undocumented and deliberately not enforced.
"""

from __future__ import annotations

import json
from typing import Any

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_TEXT_OBJECT = 3000  # any plain_text/mrkdwn text object, incl. section text
MAX_SECTION_FIELDS = 10
MAX_SECTION_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_BLOCK_ID = 255
MAX_ACTION_ID = 255
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_URL = 3000
MAX_ACTIONS_ELEMENTS = 25
MAX_CONTEXT_ELEMENTS = 10
MAX_INPUT_LABEL = 2000
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_SELECT_OPTIONS = 100
MAX_PLAIN_TEXT_INPUT_LENGTH = 3000
MAX_MODAL_TITLE = 24
MAX_MODAL_BUTTON = 24
MAX_PRIVATE_METADATA = 3000
MAX_CALLBACK_ID = 255
MAX_MESSAGE_TEXT = 40_000  # Slack truncates beyond this with warning "message_truncated"

_TEXT_TYPES = {"plain_text", "mrkdwn"}
_KNOWN_BLOCKS = {
    "actions",
    "context",
    "divider",
    "file",
    "header",
    "image",
    "input",
    "rich_text",
    "section",
    "video",
    "markdown",
}


def _err(msg: str, pointer: str) -> str:
    return f"[ERROR] {msg} [json-pointer:{pointer}]"


def decode_json_field(value: Any) -> Any:
    """Form-encoded Web API calls carry `blocks`/`view` as JSON strings; JSON calls carry objects."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _text_object(
    obj: Any, ptr: str, *, max_len: int = MAX_TEXT_OBJECT, plain_only: bool = False
) -> list[str]:
    if not isinstance(obj, dict):
        return [_err("must provide an object", ptr)]
    errors: list[str] = []
    kind = obj.get("type")
    allowed = {"plain_text"} if plain_only else _TEXT_TYPES
    if kind not in allowed:
        errors.append(_err(f"must be one of {sorted(allowed)}", f"{ptr}/type"))
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        errors.append(_err("must be more than 0 characters", f"{ptr}/text"))
    elif len(text) > max_len:
        errors.append(_err(f"must be less than {max_len + 1} characters", f"{ptr}/text"))
    return errors


def _max_len(obj: dict[str, Any], key: str, limit: int, ptr: str) -> list[str]:
    value = obj.get(key)
    if isinstance(value, str) and len(value) > limit:
        return [_err(f"must be less than {limit + 1} characters", f"{ptr}/{key}")]
    return []


def _options(options: Any, ptr: str) -> list[str]:
    if not isinstance(options, list):
        return []
    errors: list[str] = []
    if len(options) > MAX_SELECT_OPTIONS:
        errors.append(_err(f"no more than {MAX_SELECT_OPTIONS} items allowed", ptr))
    for i, opt in enumerate(options):
        if isinstance(opt, dict):
            errors += _text_object(opt.get("text"), f"{ptr}/{i}/text", max_len=MAX_OPTION_TEXT)
            errors += _max_len(opt, "value", MAX_OPTION_VALUE, f"{ptr}/{i}")
    return errors


def validate_element(el: Any, ptr: str) -> list[str]:
    """Interactive/layout elements (button, selects, inputs, images in context)."""
    if not isinstance(el, dict):
        return [_err("must provide an object", ptr)]
    errors = _max_len(el, "action_id", MAX_ACTION_ID, ptr)
    kind = el.get("type")
    if kind == "button":
        errors += _text_object(el.get("text"), f"{ptr}/text", max_len=MAX_BUTTON_TEXT, plain_only=True)
        errors += _max_len(el, "value", MAX_BUTTON_VALUE, ptr)
        errors += _max_len(el, "url", MAX_URL, ptr)
    elif kind in {"static_select", "multi_static_select", "radio_buttons", "checkboxes", "overflow"}:
        errors += _options(el.get("options"), f"{ptr}/options")
    elif kind == "plain_text_input":
        max_length = el.get("max_length")
        if isinstance(max_length, int) and max_length > MAX_PLAIN_TEXT_INPUT_LENGTH:
            errors.append(_err(f"must be at most {MAX_PLAIN_TEXT_INPUT_LENGTH}", f"{ptr}/max_length"))
    elif kind in _TEXT_TYPES:  # text objects inside context blocks
        errors += _text_object(el, ptr)
    return errors


def validate_blocks(blocks: Any, *, max_blocks: int = MAX_MESSAGE_BLOCKS) -> list[str]:
    """Validate a `blocks` array (already JSON-decoded or as a JSON string)."""
    blocks = decode_json_field(blocks)
    if blocks is None:
        return []
    if not isinstance(blocks, list):
        return [_err("must provide an array", "/blocks")]
    errors: list[str] = []
    if len(blocks) > max_blocks:
        errors.append(_err(f"no more than {max_blocks} items allowed", "/blocks"))
    seen_ids: set[str] = set()
    for i, block in enumerate(blocks):
        ptr = f"/blocks/{i}"
        if not isinstance(block, dict):
            errors.append(_err("must provide an object", ptr))
            continue
        kind = block.get("type")
        if kind not in _KNOWN_BLOCKS:
            errors.append(_err(f"unsupported type: {kind!r}", f"{ptr}/type"))
        block_id = block.get("block_id")
        if isinstance(block_id, str):
            errors += _max_len(block, "block_id", MAX_BLOCK_ID, ptr)
            if block_id in seen_ids:
                errors.append(_err(f"duplicate block_id: {block_id}", f"{ptr}/block_id"))
            seen_ids.add(block_id)
        errors += _validate_block(kind, block, ptr)
    return errors


def _validate_block(kind: Any, block: dict[str, Any], ptr: str) -> list[str]:
    errors: list[str] = []
    if kind == "section":
        if "text" not in block and "fields" not in block:
            errors.append(_err("must provide either text or fields", ptr))
        if "text" in block:
            errors += _text_object(block["text"], f"{ptr}/text")
        fields = block.get("fields")
        if isinstance(fields, list):
            if len(fields) > MAX_SECTION_FIELDS:
                errors.append(_err(f"no more than {MAX_SECTION_FIELDS} items allowed", f"{ptr}/fields"))
            for j, field in enumerate(fields):
                errors += _text_object(field, f"{ptr}/fields/{j}", max_len=MAX_SECTION_FIELD_TEXT)
        if "accessory" in block:
            errors += validate_element(block["accessory"], f"{ptr}/accessory")
    elif kind == "header":
        errors += _text_object(block.get("text"), f"{ptr}/text", max_len=MAX_HEADER_TEXT, plain_only=True)
    elif kind in {"actions", "context"}:
        elements = block.get("elements")
        limit = MAX_ACTIONS_ELEMENTS if kind == "actions" else MAX_CONTEXT_ELEMENTS
        if not isinstance(elements, list) or not elements:
            errors.append(_err("must provide at least 1 item", f"{ptr}/elements"))
        else:
            if len(elements) > limit:
                errors.append(_err(f"no more than {limit} items allowed", f"{ptr}/elements"))
            for j, el in enumerate(elements):
                errors += validate_element(el, f"{ptr}/elements/{j}")
    elif kind == "rich_text":
        errors += _rich_text(block.get("elements"), f"{ptr}/elements")
    elif kind == "input":
        errors += _text_object(block.get("label"), f"{ptr}/label", max_len=MAX_INPUT_LABEL, plain_only=True)
        if "hint" in block:
            errors += _text_object(block["hint"], f"{ptr}/hint", max_len=MAX_INPUT_LABEL, plain_only=True)
        if "element" not in block:
            errors.append(_err("missing required field: element", ptr))
        else:
            errors += validate_element(block["element"], f"{ptr}/element")
    return errors


_RICH_TEXT_OBJECTS = {"rich_text_section", "rich_text_list", "rich_text_preformatted", "rich_text_quote"}
_RICH_TEXT_STYLES = {
    *("bold", "italic", "strike", "code", "underline", "highlight", "client_highlight", "unlink")
}


def _rich_text(elements: Any, ptr: str) -> list[str]:
    """A rich_text block's objects (sections, lists, quotes, preformatted) and their elements."""
    if not isinstance(elements, list) or not elements:
        return [_err("must provide at least 1 item", ptr)]
    errors: list[str] = []
    for j, obj in enumerate(elements):
        here = f"{ptr}/{j}"
        if not isinstance(obj, dict) or obj.get("type") not in _RICH_TEXT_OBJECTS:
            errors.append(_err(f"must be one of {sorted(_RICH_TEXT_OBJECTS)}", f"{here}/type"))
            continue
        inner = obj.get("elements")
        if not isinstance(inner, list):
            errors.append(_err("must provide an array", f"{here}/elements"))
        elif obj["type"] == "rich_text_list":
            errors += _rich_text(inner, f"{here}/elements")
        else:
            for k, el in enumerate(inner):
                errors += _rich_text_element(el, f"{here}/elements/{k}")
    return errors


def _rich_text_element(el: Any, ptr: str) -> list[str]:
    if not isinstance(el, dict) or not isinstance(el.get("type"), str):
        return [_err("must provide an object with a type", ptr)]
    errors: list[str] = []
    if el["type"] == "text":
        text = el.get("text")
        if not isinstance(text, str) or not text:
            errors.append(_err("must be more than 0 characters", f"{ptr}/text"))
    style = el.get("style")
    if style is not None and (not isinstance(style, dict) or not set(style) <= _RICH_TEXT_STYLES):
        errors.append(_err(f"style keys must be among {sorted(_RICH_TEXT_STYLES)}", f"{ptr}/style"))
    return errors


def validate_view(view: Any) -> list[str]:
    """Validate a `view` object for views.open/update/push (modal only; home tabs use views.publish)."""
    view = decode_json_field(view)
    if not isinstance(view, dict):
        return [_err("must provide an object", "/view")]
    errors: list[str] = []
    if view.get("type") != "modal":
        errors.append(_err("must be 'modal'", "/view/type"))
    errors += _text_object(view.get("title"), "/view/title", max_len=MAX_MODAL_TITLE, plain_only=True)
    for key in ("submit", "close"):
        if key in view and view[key] is not None:
            errors += _text_object(view[key], f"/view/{key}", max_len=MAX_MODAL_BUTTON, plain_only=True)
    errors += _max_len(view, "private_metadata", MAX_PRIVATE_METADATA, "/view")
    errors += _max_len(view, "callback_id", MAX_CALLBACK_ID, "/view")
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        errors.append(_err("must provide an array", "/view/blocks"))
        return errors
    errors += [
        e.replace("[json-pointer:/blocks", "[json-pointer:/view/blocks")
        for e in validate_blocks(blocks, max_blocks=MAX_VIEW_BLOCKS)
    ]
    has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
    if has_input and not view.get("submit"):
        errors.append(_err("submit is required when an input block is present", "/view/submit"))
    return errors
