"""Configuration: YAML validated by pydantic. Errors name the key; secrets are env-var names only."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.domain.phases import Phase


class ConfigError(Exception):
    """A config that cannot be used; the message names the key and what is wrong."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseConfig(_Model):
    url: str = "sqlite+aiosqlite:///convene.db"


class VaultConfig(_Model):
    """Where round keys live with ``anonymity.backend: vault`` (HashiCorp Vault, KV v2 engine)."""

    address: str = ""  # e.g. https://vault.internal:8200
    mount: str = "secret"
    path: str = "convene/round-keys"
    token_env: str = "VAULT_TOKEN"
    token_file: str | None = None  # read at every call: a token that Vault Agent keeps fresh
    namespace: str | None = None
    ca_cert: str | None = None
    timeout_seconds: float = Field(default=5.0, gt=0)


class AnonymityConfig(_Model):
    backend: Literal["file", "vault"] = "file"
    key_dir: str = "keys"
    kek_env: str = "CONVENE_KEK"
    kek_file: str | None = None
    # A trial on one host: `convene run` may make a KEK beside the keys (key_dir/kek.b64). Without
    # it, `convene run` refuses to start with no KEK, or with a KEK file inside key_dir.
    trial: bool = False
    vault: VaultConfig = VaultConfig()

    @model_validator(mode="after")
    def _check(self) -> AnonymityConfig:
        if self.backend == "vault" and not self.vault.address.strip():
            raise ValueError("backend vault needs vault.address (e.g. https://vault.internal:8200)")
        return self


class PhaseMinutes(_Model):
    contribute: int | None = Field(default=None, ge=1)
    vote: int | None = Field(default=None, ge=1)
    goals: int | None = Field(default=None, ge=1)
    actions: int | None = Field(default=None, ge=1)

    def for_phase(self, phase: Phase) -> int | None:
        value = getattr(self, phase.value, None)
        return value if isinstance(value, int) else None


class TemplateConfig(_Model):
    phase_minutes: PhaseMinutes = PhaseMinutes()
    # Continuous (as in Polis): contributions stay open while voting runs, released in batches.
    continuous: bool = False
    # Pre-moderation: ideas wait in the conveners' review list (text only) until one approves them.
    premoderation: bool = False


class ContinuousConfig(_Model):
    """How continuous rounds release ideas while voting runs (see ``rounds.templates.*.continuous``)."""

    batch_min: int = Field(default=5, ge=2)  # k: never fewer new ideas at once
    min_interval_minutes: float = Field(default=10.0, gt=0)
    jitter_minutes: float = Field(default=5.0, ge=0)  # a random delay on top, up to this
    min_participants: int = Field(default=8, ge=2)  # fewer: ideas are released once, at phase close


class RoundsConfig(_Model):
    min_contribution_chars: int = Field(default=1, ge=1)
    max_contribution_chars: int = Field(default=1000, ge=1, le=3000)
    contributions_per_participant: int = Field(default=3, ge=1, le=50)
    sector_min_voters: int = Field(default=5, ge=1)
    sectors: list[str] = Field(
        default_factory=lambda: [
            "public_sector",
            "business",
            "civil_society",
            "resident",
            "academia",
            "prefer_not_to_say",
        ]
    )
    templates: dict[str, TemplateConfig] = Field(
        default_factory=lambda: {
            "standard": TemplateConfig(),
            "quick": TemplateConfig(),
            "continuous": TemplateConfig(continuous=True),
        }
    )
    default_template: str = "standard"
    continuous: ContinuousConfig = ContinuousConfig()

    @model_validator(mode="after")
    def _check(self) -> RoundsConfig:
        if self.min_contribution_chars > self.max_contribution_chars:
            raise ValueError("min_contribution_chars is larger than max_contribution_chars")
        if self.default_template not in self.templates:
            raise ValueError(f"default_template {self.default_template!r} is not one of templates")
        if not self.sectors:
            raise ValueError("sectors must list at least one sector")
        if len(set(self.sectors)) != len(self.sectors):
            raise ValueError("sectors has duplicates")
        return self


class OutboxConfig(_Model):
    poll_seconds: float = Field(default=0.5, gt=0)
    # Private replies and DMs give up after this many failed attempts; public posts retry while
    # their round is open (see public_give_up_hours).
    max_attempts: int = Field(default=8, ge=1)
    backoff_base_seconds: float = Field(default=1.0, gt=0)
    backoff_max_seconds: float = Field(default=300.0, gt=0)
    lease_seconds: float = Field(default=60.0, gt=0)
    # This process's relay identity. None: "<host>-<n>", the lowest slot no live process on this host
    # holds, so a restart takes back the rows its predecessor had in flight at once.
    worker_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    concurrency: int = Field(default=64, ge=1, le=1024)  # deliveries in flight at once, across conversations
    public_give_up_hours: float = Field(default=24.0, gt=0)  # after the round closed or was cancelled
    stall_minutes: float = Field(default=10.0, gt=0)  # a channel failing this long is reported


class SchedulerConfig(_Model):
    poll_seconds: float = Field(default=5.0, gt=0)


class FollowUpConfig(_Model):
    """Following up a closed round's actions and goals (times in the round's time zone)."""

    timezone: str = "UTC"  # a round's time zone until a convener sets one (/convene timezone)
    reminder_hour: int = Field(default=9, ge=0, le=23)  # local hour reminders are sent at
    due_soon_days: int = Field(default=3, ge=0, le=60)  # "due soon" this many days ahead; 0: none
    progress_days: int = Field(default=7, ge=1, le=92)  # the progress post is updated this often
    checkin_cadence: Literal["none", "weekly", "fortnightly", "monthly", "quarterly"] = "monthly"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as Europe/London)"
            ) from None
        return value


class IngestConfig(_Model):
    batch_max: int = Field(default=200, ge=1)
    batch_wait_ms: float = Field(default=2.0, ge=0)


class ConsoleConfig(_Model):
    enabled: bool = False  # `convene console` always runs; `convene run` only when enabled
    conveners: list[str] = Field(default_factory=lambda: ["maya"])


class HttpListen(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=3000, ge=0, le=65535)
    path: str = "/slack/events"


def _id_text(value: Any) -> Any:
    """A platform id as YAML gives it, a whole number or a string, kept as text: YAML reads a
    snowflake as an exact Python int, but a float (or true/false) has already lost what it was."""
    if isinstance(value, bool | float):
        raise ValueError("write the id as a whole number or in quotes")
    if isinstance(value, int):
        return str(value)
    return value.strip() if isinstance(value, str) else value


def _id_shape(pattern: str, what: str) -> AfterValidator:
    shape = re.compile(pattern)

    def check(value: str) -> str:
        if not shape.fullmatch(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return AfterValidator(check)


SlackId = Annotated[
    str,
    BeforeValidator(_id_text),
    _id_shape(r"[A-Z0-9]{1,32}", "a Slack id (capital letters and digits, like U0123ABCD or S0123ABCD)"),
]
DiscordId = Annotated[
    str,
    BeforeValidator(_id_text),
    _id_shape(r"[0-9]{1,20}", "a Discord id (digits only, like 123456789012345678)"),
]


class SlackConveners(_Model):
    # The workspace these ids belong to: a Slack user id means something only in its workspace.
    # Single-token mode: the token's workspace when unset. OAuth mode: required with any ids.
    team_id: SlackId | None = None
    user_ids: list[SlackId] = Field(default_factory=list)
    usergroup_ids: list[SlackId] = Field(default_factory=list)


class SlackOAuth(_Model):
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
    state_expiration_seconds: int = Field(default=600, ge=60, le=3600)
    token_cache_seconds: float = Field(default=60.0, ge=0)  # how long a worker keeps a found token


class SlackConfig(_Model):
    enabled: bool = False
    mode: Literal["socket", "http"] = "socket"
    bot_token_env: str = "SLACK_BOT_TOKEN"
    app_token_env: str = "SLACK_APP_TOKEN"
    signing_secret_env: str = "SLACK_SIGNING_SECRET"
    http: HttpListen = HttpListen()
    api_base_url: str = "https://slack.com/api/"
    conveners: SlackConveners = SlackConveners()
    oauth: SlackOAuth = SlackOAuth()

    @model_validator(mode="after")
    def _check(self) -> SlackConfig:
        if self.oauth.enabled:
            if self.mode != "http":
                raise ValueError("oauth needs mode: http (Slack redirects installers to this server)")
            c = self.conveners
            if (c.user_ids or c.usergroup_ids) and c.team_id is None:
                raise ValueError(
                    "with oauth, conveners.team_id must name the workspace that conveners.user_ids "
                    "and usergroup_ids belong to"
                )
        return self


class DiscordConveners(_Model):
    user_ids: list[DiscordId] = Field(default_factory=list)
    role_ids: list[DiscordId] = Field(default_factory=list)


class DiscordConfig(_Model):
    enabled: bool = False
    token_env: str = "DISCORD_TOKEN"
    guild_ids: list[DiscordId] = Field(default_factory=list)
    conveners: DiscordConveners = DiscordConveners()
    api_base_url: str | None = None
    gateway_url: str | None = None
    shard_count: int | None = Field(default=None, ge=1)
    # The shards this worker runs, of shard_count (e.g. [0, 1] and [2, 3] on two workers); None: all.
    shard_ids: list[int] | None = None

    @model_validator(mode="after")
    def _check_shards(self) -> DiscordConfig:
        if self.shard_ids is None:
            return self
        if self.shard_count is None:
            raise ValueError("shard_ids needs shard_count (the total over every worker)")
        if not self.shard_ids:
            raise ValueError("shard_ids lists no shard; leave it out to run all of them")
        if len(set(self.shard_ids)) != len(self.shard_ids):
            raise ValueError("shard_ids has duplicates")
        wrong = [i for i in self.shard_ids if not 0 <= i < self.shard_count]
        if wrong:
            raise ValueError(f"shard_ids {wrong} are outside 0..{self.shard_count - 1} (shard_count)")
        return self


class RetentionConfig(_Model):
    # Who took part (the roster) and every other row that names a person is deleted this many days
    # after a round closes or is cancelled (0: at the next purge).
    roster_days: int = Field(default=30, ge=0)
    # A round left in one phase with no deadline for this many days is cancelled and its key destroyed.
    idle_round_days: int = Field(default=60, ge=1)


class LoggingConfig(_Model):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"  # json: one object a line, fixed keys (bot/logs.py)


class OpsConfig(_Model):
    """``/healthz`` and ``/metrics`` (Prometheus), served by `convene run`."""

    port: int | None = Field(default=None, ge=0, le=65535)  # None: not served
    host: str = "127.0.0.1"
    # /healthz answers 503 when the oldest due post has waited longer than this.
    max_relay_lag_seconds: float = Field(default=120.0, gt=0)


class AppConfig(_Model):
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


def _describe(err: ValidationError) -> str:
    lines = []
    for item in err.errors():
        key = ".".join(str(p) for p in item["loc"]) or "(top level)"
        lines.append(f"{key}: {item['msg']}")
    return "; ".join(lines)


def parse_config(data: Any, *, source: str = "config") -> AppConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys")
    try:
        return AppConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{source}: {_describe(err)}") from None


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
