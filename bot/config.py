"""Configuration: YAML checked against frozen dataclasses. Errors name the key; secrets are env-var
names only.

Why no validation library: pydantic cost an idle worker about 9 MiB (issue 13), and msgspec, tried
in its place, fitted badly: its structs are not checked when built in code (bounds and Literals
only hold for decoded data), an id kept as text from a YAML int needs a custom type that then leaks
into every caller, and its messages need rewriting to name our keys. The rules here are few (types,
bounds, Literals, id shapes, cross-field checks), so each section is a stdlib dataclass that checks
itself in ``__post_init__``, whether built from YAML or in code, and says what is wrong in our words.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml

from bot.domain.phases import Phase


class ConfigError(Exception):
    """A config that cannot be used; the message names the key and what is wrong."""


class _Invalid(ValueError):
    """What is wrong in one section, each problem at its key path (innermost key last)."""

    def __init__(self, problems: list[tuple[tuple[str, ...], str]]) -> None:
        self.problems = problems
        super().__init__(str(self))

    def within(self, key: str) -> _Invalid:
        return _Invalid([((key, *path), message) for path, message in self.problems])

    def __str__(self) -> str:
        return "; ".join(
            f"{'.'.join(path)}: {message}" if path else message for path, message in self.problems
        )


# --- rules on one value (in Annotated[...]; each takes the value and returns it, or raises) -----------


@dataclass(frozen=True)
class _Bounds:
    ge: float | None = None
    gt: float | None = None
    le: float | None = None

    def __call__(self, value: Any) -> Any:
        if value is None:
            return value
        if self.ge is not None and value < self.ge:
            raise ValueError(f"must be at least {self.ge:g}, not {value!r}")
        if self.gt is not None and value <= self.gt:
            raise ValueError(f"must be more than {self.gt:g}, not {value!r}")
        if self.le is not None and value > self.le:
            raise ValueError(f"must be at most {self.le:g}, not {value!r}")
        return value


def _at_least(n: float) -> _Bounds:
    return _Bounds(ge=n)


def _above(n: float) -> _Bounds:
    return _Bounds(gt=n)


def _between(low: float, high: float) -> _Bounds:
    return _Bounds(ge=low, le=high)


@dataclass(frozen=True)
class _Shape:
    pattern: str
    what: str

    def __call__(self, value: Any) -> Any:
        if value is not None and not re.fullmatch(self.pattern, value):
            raise ValueError(f"{value!r} is not {self.what}")
        return value


@dataclass(frozen=True)
class _PlatformId(_Shape):
    """A platform id as YAML gives it, a whole number or a string, kept as text: YAML reads a
    snowflake as an exact Python int, but a float (or true/false) has already lost what it was."""

    def text(self, value: Any) -> Any:
        if isinstance(value, bool | float):
            raise ValueError("write the id as a whole number or in quotes")
        if isinstance(value, int):
            return str(value)
        return value.strip() if isinstance(value, str) else value


def _known_zone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/London)") from None
    return value


SlackId = Annotated[
    str,
    _PlatformId(r"[A-Z0-9]{1,32}", "a Slack id (capital letters and digits, like U0123ABCD or S0123ABCD)"),
]
DiscordId = Annotated[str, _PlatformId(r"[0-9]{1,20}", "a Discord id (digits only, like 123456789012345678)")]


# --- the checking --------------------------------------------------------------------------------------


def _kind(hint: Any) -> str:
    names = {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}
    if hint in names:
        return names[hint]
    if isinstance(hint, type) and issubclass(hint, _Section):
        return "a mapping of keys"
    return str(hint)


def _convert(hint: Any, value: Any) -> Any:
    """``value`` as the type ``hint`` describes, or _Invalid naming what is wrong (at the path below
    this value: a list index, a mapping key, a section's keys)."""
    origin = typing.get_origin(hint)
    if origin is Annotated:
        base, *rules = typing.get_args(hint)
        for rule in rules:
            if isinstance(rule, _PlatformId):
                value = _one(rule.text, value)
        value = _convert(base, value)
        for rule in rules:
            value = _one(rule, value)
        return value
    if origin is Union or origin is types.UnionType:
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        (inner,) = [o for o in options if o is not type(None)]  # only `X | None` is used here
        return _convert(inner, value)
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise _Invalid([((), f"{value!r} is not one of {', '.join(repr(a) for a in allowed)}")])
        return value
    if origin is list:
        if not isinstance(value, list | tuple):
            raise _Invalid([((), f"expected a list, not {value!r}")])
        (item,) = typing.get_args(hint)
        return _each(enumerate(value), item, lambda pairs: [v for _, v in pairs])
    if origin is dict:
        if not isinstance(value, dict):
            raise _Invalid([((), f"expected a mapping of keys, not {value!r}")])
        _, item = typing.get_args(hint)
        return _each(value.items(), item, dict)
    if isinstance(hint, type) and issubclass(hint, _Section):
        if isinstance(value, hint):
            return value
        if not isinstance(value, dict):
            raise _Invalid([((), f"expected a mapping of keys, not {value!r}")])
        unknown = [str(k) for k in value if k not in hint.field_types()]
        if unknown:
            raise _Invalid([((k,), "not a known key") for k in unknown])
        return hint(**value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not hint:  # bool is an int to Python, not to a config
        raise _Invalid([((), f"expected {_kind(hint)}, not {value!r}")])
    return value


def _one(rule: Callable[[Any], Any], value: Any) -> Any:
    try:
        return rule(value)
    except _Invalid:
        raise
    except ValueError as err:
        raise _Invalid([((), str(err))]) from None


def _each(pairs: Any, hint: Any, build: Callable[[Any], Any]) -> Any:
    out, problems = [], []
    for key, value in pairs:
        try:
            out.append((key, _convert(hint, value)))
        except _Invalid as err:
            problems += err.within(str(key)).problems
    if problems:
        raise _Invalid(problems)
    return build(out)


_FIELD_TYPES: dict[type, dict[str, Any]] = {}


class _Section:
    """A frozen config section: every field is converted to its type and checked when the section is
    built (from YAML or in code), then ``_check`` relates fields to each other."""

    @classmethod
    def field_types(cls) -> dict[str, Any]:
        """Each field's name and its type, as written (with its rules)."""
        hints = _FIELD_TYPES.get(cls)
        if hints is None:
            every = typing.get_type_hints(cls, include_extras=True)
            fields = dataclasses.fields(typing.cast(Any, cls))
            hints = _FIELD_TYPES[cls] = {f.name: every[f.name] for f in fields}
        return hints

    def __post_init__(self) -> None:
        problems = []
        for name, hint in self.field_types().items():
            try:
                object.__setattr__(self, name, _convert(hint, getattr(self, name)))
            except _Invalid as err:
                problems += err.within(name).problems
        if problems:
            raise _Invalid(problems)
        try:
            self._check()
        except _Invalid:
            raise
        except ValueError as err:
            raise _Invalid([((), str(err))]) from None

    def _check(self) -> None:
        """Rules across fields; raise ValueError with the reason."""


# --- the sections ---------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DatabaseConfig(_Section):
    url: str = "sqlite+aiosqlite:///convene.db"


@dataclass(frozen=True, kw_only=True)
class VaultConfig(_Section):
    """Where round keys live with ``anonymity.backend: vault`` (HashiCorp Vault, KV v2 engine)."""

    address: str = ""  # e.g. https://vault.internal:8200
    mount: str = "secret"
    path: str = "convene/round-keys"
    token_env: str = "VAULT_TOKEN"
    token_file: str | None = None  # read at every call: a token that Vault Agent keeps fresh
    namespace: str | None = None
    ca_cert: str | None = None
    timeout_seconds: Annotated[float, _above(0)] = 5.0


@dataclass(frozen=True, kw_only=True)
class AnonymityConfig(_Section):
    backend: Literal["file", "vault"] = "file"
    key_dir: str = "keys"
    kek_env: str = "CONVENE_KEK"
    kek_file: str | None = None
    # A trial on one host: `convene run` may make a KEK beside the keys (key_dir/kek.b64). Without
    # it, `convene run` refuses to start with no KEK, or with a KEK file inside key_dir.
    trial: bool = False
    vault: VaultConfig = VaultConfig()

    def _check(self) -> None:
        if self.backend == "vault" and not self.vault.address.strip():
            raise ValueError("backend vault needs vault.address (e.g. https://vault.internal:8200)")


@dataclass(frozen=True, kw_only=True)
class PhaseMinutes(_Section):
    contribute: Annotated[int | None, _at_least(1)] = None
    vote: Annotated[int | None, _at_least(1)] = None
    goals: Annotated[int | None, _at_least(1)] = None
    actions: Annotated[int | None, _at_least(1)] = None

    def for_phase(self, phase: Phase) -> int | None:
        value = getattr(self, phase.value, None)
        return value if isinstance(value, int) else None


@dataclass(frozen=True, kw_only=True)
class TemplateConfig(_Section):
    phase_minutes: PhaseMinutes = PhaseMinutes()
    # Continuous (as in Polis): contributions stay open while voting runs, released in batches.
    continuous: bool = False
    # Pre-moderation: ideas wait in the conveners' review list (text only) until one approves them.
    premoderation: bool = False


@dataclass(frozen=True, kw_only=True)
class ContinuousConfig(_Section):
    """How continuous rounds release ideas while voting runs (see ``rounds.templates.*.continuous``)."""

    batch_min: Annotated[int, _at_least(2)] = 5  # k: never fewer new ideas at once
    min_interval_minutes: Annotated[float, _above(0)] = 10.0
    jitter_minutes: Annotated[float, _at_least(0)] = 5.0  # a random delay on top, up to this
    min_participants: Annotated[int, _at_least(2)] = 8  # fewer: ideas are released once, at phase close


@dataclass(frozen=True, kw_only=True)
class RoundsConfig(_Section):
    min_contribution_chars: Annotated[int, _at_least(1)] = 1
    max_contribution_chars: Annotated[int, _between(1, 3000)] = 1000
    contributions_per_participant: Annotated[int, _between(1, 50)] = 3
    sector_min_voters: Annotated[int, _at_least(1)] = 5
    sectors: list[str] = field(
        default_factory=lambda: [
            "public_sector",
            "business",
            "civil_society",
            "resident",
            "academia",
            "prefer_not_to_say",
        ]
    )
    templates: dict[str, TemplateConfig] = field(
        default_factory=lambda: {
            "standard": TemplateConfig(),
            "quick": TemplateConfig(),
            "continuous": TemplateConfig(continuous=True),
        }
    )
    default_template: str = "standard"
    continuous: ContinuousConfig = ContinuousConfig()

    def _check(self) -> None:
        if self.min_contribution_chars > self.max_contribution_chars:
            raise ValueError("min_contribution_chars is larger than max_contribution_chars")
        if self.default_template not in self.templates:
            raise ValueError(f"default_template {self.default_template!r} is not one of templates")
        if not self.sectors:
            raise ValueError("sectors must list at least one sector")
        if len(set(self.sectors)) != len(self.sectors):
            raise ValueError("sectors has duplicates")


@dataclass(frozen=True, kw_only=True)
class OutboxConfig(_Section):
    poll_seconds: Annotated[float, _above(0)] = 0.5
    # Private replies and DMs give up after this many failed attempts; public posts retry while
    # their round is open (see public_give_up_hours).
    max_attempts: Annotated[int, _at_least(1)] = 8
    backoff_base_seconds: Annotated[float, _above(0)] = 1.0
    backoff_max_seconds: Annotated[float, _above(0)] = 300.0
    lease_seconds: Annotated[float, _above(0)] = 60.0
    # This process's relay identity. None: "<host>-<n>", the lowest slot no live process on this host
    # holds, so a restart takes back the rows its predecessor had in flight at once.
    worker_id: Annotated[
        str | None, _Shape(r"[A-Za-z0-9._:-]{1,64}", "1 to 64 letters, digits or . _ : - (like worker-1)")
    ] = None
    concurrency: Annotated[int, _between(1, 1024)] = 64  # deliveries in flight at once, across conversations
    public_give_up_hours: Annotated[float, _above(0)] = 24.0  # after the round closed or was cancelled
    stall_minutes: Annotated[float, _above(0)] = 10.0  # a channel failing this long is reported


@dataclass(frozen=True, kw_only=True)
class SchedulerConfig(_Section):
    poll_seconds: Annotated[float, _above(0)] = 5.0


@dataclass(frozen=True, kw_only=True)
class FollowUpConfig(_Section):
    """Following up a closed round's actions and goals (times in the round's time zone)."""

    timezone: Annotated[str, _known_zone] = "UTC"  # a round's time zone until a convener sets one
    reminder_hour: Annotated[int, _between(0, 23)] = 9  # local hour reminders are sent at
    due_soon_days: Annotated[int, _between(0, 60)] = 3  # "due soon" this many days ahead; 0: none
    progress_days: Annotated[int, _between(1, 92)] = 7  # the progress post is updated this often
    checkin_cadence: Literal["none", "weekly", "fortnightly", "monthly", "quarterly"] = "monthly"


@dataclass(frozen=True, kw_only=True)
class IngestConfig(_Section):
    batch_max: Annotated[int, _at_least(1)] = 200
    batch_wait_ms: Annotated[float, _at_least(0)] = 2.0


@dataclass(frozen=True, kw_only=True)
class ConsoleConfig(_Section):
    enabled: bool = False  # `convene console` always runs; `convene run` only when enabled
    conveners: list[str] = field(default_factory=lambda: ["maya"])


@dataclass(frozen=True, kw_only=True)
class HttpListen(_Section):
    host: str = "127.0.0.1"
    port: Annotated[int, _between(0, 65535)] = 3000
    path: str = "/slack/events"


@dataclass(frozen=True, kw_only=True)
class SlackConveners(_Section):
    # The workspace these ids belong to: a Slack user id means something only in its workspace.
    # Single-token mode: the token's workspace when unset. OAuth mode: required with any ids.
    team_id: SlackId | None = None
    user_ids: list[SlackId] = field(default_factory=list)
    usergroup_ids: list[SlackId] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class SlackOAuth(_Section):
    """Installation in many workspaces (Slack's OAuth v2): each workspace's bot token is kept in the
    database (slack_sdk's installation store) and found from each verified request. Off: one bot
    token from ``bot_token_env``, one workspace."""

    enabled: bool = False
    client_id_env: str = "SLACK_CLIENT_ID"
    client_secret_env: str = "SLACK_CLIENT_SECRET"
    scopes: list[str] | None = None  # None: the bot scopes of adapters/slack/manifest.yaml
    install_path: str = "/slack/install"
    redirect_path: str = "/slack/oauth_redirect"
    redirect_uri: str | None = None  # the public URL of redirect_path, as registered with Slack
    state_expiration_seconds: Annotated[int, _between(60, 3600)] = 600
    token_cache_seconds: Annotated[float, _at_least(0)] = 60.0  # how long a worker keeps a found token


@dataclass(frozen=True, kw_only=True)
class SlackConfig(_Section):
    enabled: bool = False
    mode: Literal["socket", "http"] = "socket"
    bot_token_env: str = "SLACK_BOT_TOKEN"
    app_token_env: str = "SLACK_APP_TOKEN"
    signing_secret_env: str = "SLACK_SIGNING_SECRET"
    http: HttpListen = HttpListen()
    api_base_url: str = "https://slack.com/api/"
    conveners: SlackConveners = SlackConveners()
    oauth: SlackOAuth = SlackOAuth()

    def _check(self) -> None:
        if self.oauth.enabled:
            if self.mode != "http":
                raise ValueError("oauth needs mode: http (Slack redirects installers to this server)")
            c = self.conveners
            if (c.user_ids or c.usergroup_ids) and c.team_id is None:
                raise ValueError(
                    "with oauth, conveners.team_id must name the workspace that conveners.user_ids "
                    "and usergroup_ids belong to"
                )


@dataclass(frozen=True, kw_only=True)
class DiscordConveners(_Section):
    user_ids: list[DiscordId] = field(default_factory=list)
    role_ids: list[DiscordId] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class DiscordConfig(_Section):
    enabled: bool = False
    token_env: str = "DISCORD_TOKEN"
    guild_ids: list[DiscordId] = field(default_factory=list)
    conveners: DiscordConveners = DiscordConveners()
    api_base_url: str | None = None
    gateway_url: str | None = None
    shard_count: Annotated[int | None, _at_least(1)] = None
    # The shards this worker runs, of shard_count (e.g. [0, 1] and [2, 3] on two workers); None: all.
    shard_ids: list[int] | None = None

    def _check(self) -> None:
        if self.shard_ids is None:
            return
        if self.shard_count is None:
            raise ValueError("shard_ids needs shard_count (the total over every worker)")
        if not self.shard_ids:
            raise ValueError("shard_ids lists no shard; leave it out to run all of them")
        if len(set(self.shard_ids)) != len(self.shard_ids):
            raise ValueError("shard_ids has duplicates")
        wrong = [i for i in self.shard_ids if not 0 <= i < self.shard_count]
        if wrong:
            raise ValueError(f"shard_ids {wrong} are outside 0..{self.shard_count - 1} (shard_count)")


@dataclass(frozen=True, kw_only=True)
class RetentionConfig(_Section):
    # Who took part (the roster) and every other row that names a person is deleted this many days
    # after a round closes or is cancelled (0: at the next purge).
    roster_days: Annotated[int, _at_least(0)] = 30
    # A round left in one phase with no deadline for this many days is cancelled and its key destroyed.
    idle_round_days: Annotated[int, _at_least(1)] = 60


@dataclass(frozen=True, kw_only=True)
class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"  # json: one object a line, fixed keys (bot/logs.py)


@dataclass(frozen=True, kw_only=True)
class OpsConfig(_Section):
    """``/healthz`` and ``/metrics`` (Prometheus), served by `convene run`."""

    port: Annotated[int | None, _between(0, 65535)] = None  # None: not served
    host: str = "127.0.0.1"
    # /healthz answers 503 when the oldest due post has waited longer than this.
    max_relay_lag_seconds: Annotated[float, _above(0)] = 120.0


@dataclass(frozen=True, kw_only=True)
class AppConfig(_Section):
    database: DatabaseConfig = DatabaseConfig()
    language: str = "en"
    prompts_dir: str | None = None
    anonymity: AnonymityConfig = AnonymityConfig()
    rounds: RoundsConfig = RoundsConfig()
    outbox: OutboxConfig = OutboxConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    ingest: IngestConfig = IngestConfig()
    followup: FollowUpConfig = FollowUpConfig()
    console: ConsoleConfig = ConsoleConfig()
    slack: SlackConfig = SlackConfig()
    discord: DiscordConfig = DiscordConfig()
    retention: RetentionConfig = RetentionConfig()
    logging: LoggingConfig = LoggingConfig()
    ops: OpsConfig = OpsConfig()


def parse_config(data: Any, *, source: str = "config") -> AppConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys")
    try:
        config: AppConfig = _convert(AppConfig, data)
    except _Invalid as err:
        raise ConfigError(f"{source}: {err}") from None
    return config


def load_config(path: str | os.PathLike[str], *overlays: str | os.PathLike[str]) -> AppConfig:
    """Read and validate a YAML config, and any ``overlays`` over it: a later file's mappings are
    merged key by key, its other values replace (one shared config, one small file per worker for
    ``discord.shard_ids``). Raises ConfigError; never exits the process."""
    data = _read_yaml(path)
    for overlay in overlays:
        more = _read_yaml(overlay)
        if more is not None and not isinstance(more, dict):
            raise ConfigError(f"{overlay}: the top level must be a mapping of keys")
        data = _merged(data if isinstance(data, dict) else {}, more or {})
    source = " + ".join(str(p) for p in (path, *overlays))
    return parse_config(data, source=source)


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: str | os.PathLike[str]) -> Any:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{p}: cannot read the file ({err.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{p}: not valid YAML{where}") from None
    return data
