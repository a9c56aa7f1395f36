"""Discord API v10 payload builders for the fake Discord (``tests.platform_fakes.discord``).

All wire shapes live here, in one place, so that drift against the real API (see
platform-testing.md §4.4) is fixed once. Shapes follow discord.py 2.7's
``discord/types/*.py`` TypedDicts and discord-api-docs. Keep them *complete*: a missing
key that discord.py indexes with ``data[...]`` raises inside the gateway reader and kills
``Client.start()`` (e.g. ``attachment_size_limit``, member ``flags``).

Builders return plain ``dict`` JSON objects; ids are strings, as on the wire.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

JSON = dict[str, Any]

DISCORD_EPOCH_MS = 1_420_070_400_000
#: Discord's default upload limit for a guild without boosts (10 MiB).
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024

# Interaction types (Discord "Interaction Type").
PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5
# Application command option types.
SUB_COMMAND, SUB_COMMAND_GROUP, STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER = (
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
)
# Component types.
ACTION_ROW, BUTTON, STRING_SELECT, TEXT_INPUT, LABEL = 1, 2, 3, 4, 18
# Message flags.
FLAG_EPHEMERAL, FLAG_LOADING, FLAG_COMPONENTS_V2 = 1 << 6, 1 << 7, 1 << 15

_counter = itertools.count(1)


def snowflake() -> str:
    """A fresh, unique, time-ordered snowflake (so ``created_at`` is sane)."""
    ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
    return str((ms << 22) | (next(_counter) & 0x3FFFFF))


def token() -> str:
    """An interaction token (opaque string, like Discord's ``aW50ZXJhY3Rpb24...``)."""
    return "itok_" + secrets.token_urlsafe(24)


def iso_now() -> str:
    return datetime.now(UTC).isoformat()


# --------------------------------------------------------------------------- entities


def user(
    id: str | None = None,
    username: str = "alice",
    *,
    bot: bool = False,
    global_name: str | None = None,
) -> JSON:
    data: JSON = {
        "id": id or snowflake(),
        "username": username,
        "discriminator": "0",
        "global_name": global_name,
        "avatar": None,
        "banner": None,
        "accent_color": None,
        "avatar_decoration_data": None,
        "collectibles": None,
        "primary_guild": None,
        "public_flags": 0,
        "flags": 0,
    }
    if bot:
        data["bot"] = True
    return data


def member(user_payload: JSON, *, roles: Sequence[str] = (), nick: str | None = None) -> JSON:
    """A guild member as in GUILD_CREATE (``flags`` is required by discord.py)."""
    return {
        "user": user_payload,
        "nick": nick,
        "avatar": None,
        "banner": None,
        "roles": list(roles),
        "joined_at": iso_now(),
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "communication_disabled_until": None,
    }


def role(
    id: str,
    name: str = "@everyone",
    *,
    permissions: int = 0,
    position: int = 0,
    managed: bool = False,
) -> JSON:
    """A role; ``colors`` is required by discord.py >= 2.6 (gradient role colours)."""
    return {
        "id": id,
        "name": name,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "position": position,
        "permissions": str(permissions),
        "managed": managed,
        "mentionable": False,
        "flags": 0,
    }


def text_channel(id: str | None = None, name: str = "general", *, guild_id: str, position: int = 0) -> JSON:
    return {
        "id": id or snowflake(),
        "type": 0,
        "guild_id": guild_id,
        "name": name,
        "position": position,
        "permission_overwrites": [],
        "nsfw": False,
        "topic": None,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "parent_id": None,
        "flags": 0,
    }


def dm_channel(id: str, recipient: JSON) -> JSON:
    return {"id": id, "type": 1, "last_message_id": None, "flags": 0, "recipients": [recipient]}


#: Permissions a typical member has (view, send, read history, use app commands).
DEFAULT_MEMBER_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 16) | (1 << 31)
#: Administrator, for convener/owner tests (C4: admin is *not* a convener).
ADMINISTRATOR = 1 << 3


def guild(
    id: str | None = None,
    name: str = "Test Guild",
    *,
    owner_id: str,
    channels: Sequence[JSON] = (),
    members: Sequence[JSON] = (),
    roles: Sequence[JSON] = (),
    everyone_permissions: int = DEFAULT_MEMBER_PERMISSIONS,
) -> JSON:
    """A full GUILD_CREATE guild object. The @everyone role (id == guild id) is added."""
    gid = id or snowflake()
    all_roles = [role(gid, "@everyone", permissions=everyone_permissions), *roles]
    return {
        "id": gid,
        "name": name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "description": None,
        "owner_id": owner_id,
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "nsfw_level": 0,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "premium_progress_bar_enabled": False,
        "preferred_locale": "en-US",
        "features": [],
        "application_id": None,
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "safety_alerts_channel_id": None,
        "vanity_url_code": None,
        "max_members": 500000,
        "max_video_channel_users": 25,
        "roles": all_roles,
        "emojis": [],
        "stickers": [],
        "joined_at": iso_now(),
        "large": False,
        "unavailable": False,
        "member_count": len(members),
        "voice_states": [],
        "members": list(members),
        "channels": [{k: v for k, v in c.items() if k != "guild_id"} for c in channels],
        "threads": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
    }


def application(app_id: str, owner: JSON, *, name: str = "convene-test", flags: int = 0) -> JSON:
    """``GET /oauth2/applications/@me``. ``interactions_endpoint_url`` must be null, or
    discord.py warns that interactions will not arrive over the gateway."""
    return {
        "id": app_id,
        "name": name,
        "icon": None,
        "description": "",
        "rpc_origins": [],
        "bot_public": False,
        "bot_require_code_grant": False,
        "terms_of_service_url": None,
        "privacy_policy_url": None,
        "owner": owner,
        "verify_key": "0" * 64,
        "team": None,
        "guild_id": None,
        "flags": flags,
        "tags": [],
        "install_params": None,
        "custom_install_url": None,
        "interactions_endpoint_url": None,
        "role_connections_verification_url": None,
        "approximate_guild_count": 1,
        "redirect_uris": [],
        "integration_types_config": {},
    }


def message(
    *,
    channel_id: str,
    author: JSON,
    content: str = "",
    id: str | None = None,
    guild_id: str | None = None,
    embeds: Sequence[JSON] = (),
    components: Sequence[JSON] = (),
    flags: int = 0,
    type: int = 0,
    webhook_id: str | None = None,
    application_id: str | None = None,
    interaction_metadata: JSON | None = None,
    attachments: Sequence[JSON] = (),
) -> JSON:
    data: JSON = {
        "id": id or snowflake(),
        "channel_id": channel_id,
        "author": author,
        "content": content,
        "timestamp": iso_now(),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": list(attachments),
        "embeds": list(embeds),
        "pinned": False,
        "type": type,
        "flags": flags,
        "components": list(components),
    }
    if guild_id is not None:
        data["guild_id"] = guild_id
    if webhook_id is not None:
        data["webhook_id"] = webhook_id
    if application_id is not None:
        data["application_id"] = application_id
    if interaction_metadata is not None:
        data["interaction_metadata"] = interaction_metadata
    return data


def button(custom_id: str, label: str = "Go", *, style: int = 1) -> JSON:
    return {
        "type": BUTTON,
        "id": 2,
        "style": style,
        "label": label,
        "custom_id": custom_id,
        "disabled": False,
    }


def action_row(*components: JSON) -> JSON:
    return {"type": ACTION_ROW, "id": 1, "components": list(components)}


# --------------------------------------------------------------------------- interactions


def _base_interaction(
    type_: int,
    data: JSON,
    *,
    app_id: str,
    user_payload: JSON,
    guild_id: str | None,
    channel: JSON,
    permissions: int,
    roles: Sequence[str],
    locale: str,
) -> JSON:
    payload: JSON = {
        "id": snowflake(),
        "application_id": app_id,
        "type": type_,
        "data": data,
        "token": token(),
        "version": 1,
        "channel_id": channel["id"],
        "app_permissions": str(DEFAULT_MEMBER_PERMISSIONS | (1 << 14) | (1 << 15)),
        "locale": locale,
        "entitlements": [],
        "entitlement_sku_ids": [],
        "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
    }
    partial_channel = {k: v for k, v in channel.items() if k != "recipients"}
    partial_channel["permissions"] = str(permissions)
    payload["channel"] = partial_channel
    if guild_id is not None:
        payload.update(
            guild_id=guild_id,
            guild={"id": guild_id, "locale": "en-US", "features": []},
            guild_locale="en-US",
            context=0,
            authorizing_integration_owners={"0": guild_id},
        )
        m = member(user_payload, roles=roles)
        m["permissions"] = str(permissions)
        payload["member"] = m
    else:
        payload.update(context=1, authorizing_integration_owners={"0": "0"}, user=user_payload)
    return payload


def _option(name: str, value: Any) -> JSON:
    if isinstance(value, Mapping):  # an already-formed option (e.g. a USER option)
        return {"name": name, **value}
    if isinstance(value, bool):  # before int: bool is an int
        return {"name": name, "type": BOOLEAN, "value": value}
    if isinstance(value, int):
        return {"name": name, "type": INTEGER, "value": value}
    if isinstance(value, float):
        return {"name": name, "type": NUMBER, "value": value}
    return {"name": name, "type": STRING, "value": str(value)}


def slash(
    name: str,
    subcommand: str | None = None,
    options: Mapping[str, Any] | None = None,
    *,
    user: JSON,
    channel: JSON,
    app_id: str,
    guild_id: str | None = None,
    group: str | None = None,
    command_id: str | None = None,
    command_guild_id: str | None = None,
    resolved: JSON | None = None,
    permissions: int = DEFAULT_MEMBER_PERMISSIONS,
    roles: Sequence[str] = (),
    locale: str = "en-US",
) -> JSON:
    """APPLICATION_COMMAND (type 2), CHAT_INPUT (data.type 1).

    ``/name [group] subcommand opt:value``: a subcommand becomes a SUB_COMMAND (type 1)
    option wrapping the value options, inside an optional SUB_COMMAND_GROUP (type 2).
    ``options`` values are inferred (str 3, int 4, bool 5, float 10); pass a mapping such
    as ``{"type": 6, "value": uid}`` plus ``resolved=`` for users/channels/roles.
    ``command_guild_id`` marks a guild-scoped command (discord.py looks it up there).
    """
    opts = [_option(k, v) for k, v in (options or {}).items()]
    if subcommand is not None:
        opts = [{"name": subcommand, "type": SUB_COMMAND, "options": opts}]
        if group is not None:
            opts = [{"name": group, "type": SUB_COMMAND_GROUP, "options": opts}]
    data: JSON = {"id": command_id or snowflake(), "name": name, "type": 1, "options": opts}
    if command_guild_id is not None:
        data["guild_id"] = command_guild_id
    if resolved is not None:
        data["resolved"] = resolved
    return _base_interaction(
        APPLICATION_COMMAND,
        data,
        app_id=app_id,
        user_payload=user,
        guild_id=guild_id,
        channel=channel,
        permissions=permissions,
        roles=roles,
        locale=locale,
    )


def click(
    custom_id: str,
    message_payload: JSON,
    *,
    user: JSON,
    channel: JSON,
    app_id: str,
    guild_id: str | None = None,
    component_type: int = BUTTON,
    values: Sequence[str] | None = None,
    permissions: int = DEFAULT_MEMBER_PERMISSIONS,
    roles: Sequence[str] = (),
    locale: str = "en-US",
) -> JSON:
    """MESSAGE_COMPONENT (type 3). ``message_payload`` must contain the component:
    discord.py rebuilds ``DynamicItem``s from ``interaction.message.components`` and
    silently drops the click if the custom_id is not there."""
    data: JSON = {"custom_id": custom_id, "component_type": component_type}
    if values is not None:
        data["values"] = list(values)
    payload = _base_interaction(
        MESSAGE_COMPONENT,
        data,
        app_id=app_id,
        user_payload=user,
        guild_id=guild_id,
        channel=channel,
        permissions=permissions,
        roles=roles,
        locale=locale,
    )
    payload["message"] = message_payload
    return payload


def submit_modal(
    custom_id: str,
    values: Mapping[str, str | Sequence[str]],
    *,
    user: JSON,
    channel: JSON,
    app_id: str,
    guild_id: str | None = None,
    message_payload: JSON | None = None,
    permissions: int = DEFAULT_MEMBER_PERMISSIONS,
    roles: Sequence[str] = (),
    locale: str = "en-US",
) -> JSON:
    """MODAL_SUBMIT (type 5) in the Label (type 18) form discord.py 2.7 parses:
    ``{"type": 18, "component": {"type": 4, "custom_id": ..., "value": ...}}``.
    A list value becomes a string select (type 3) with ``values``."""
    components: list[JSON] = []
    for n, (field, value) in enumerate(values.items()):
        inner: JSON
        if isinstance(value, str):
            inner = {"type": TEXT_INPUT, "id": 2 * n + 2, "custom_id": field, "value": value}
        else:
            inner = {"type": STRING_SELECT, "id": 2 * n + 2, "custom_id": field, "values": list(value)}
        components.append({"type": LABEL, "id": 2 * n + 1, "component": inner})
    payload = _base_interaction(
        MODAL_SUBMIT,
        {"custom_id": custom_id, "components": components},
        app_id=app_id,
        user_payload=user,
        guild_id=guild_id,
        channel=channel,
        permissions=permissions,
        roles=roles,
        locale=locale,
    )
    if message_payload is not None:
        payload["message"] = message_payload
    return payload
