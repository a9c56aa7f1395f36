"""Configuration: YAML checked against frozen dataclasses. Errors name the key; secrets are env-var
names only.

Why no validation library: pydantic cost an idle worker about 9 MiB (issue 13), and msgspec, tried
in its place, fitted badly: its structs are not checked when built in code (bounds and Literals
only hold for decoded data), an id kept as text from a YAML int needs a custom type that then leaks
into every caller, and its messages need rewriting to name our keys. The rules here are few (types,
bounds, Literals, id shapes, cross-field checks), so each section is a stdlib dataclass that checks
itself in ``__post_init__``, whether built from YAML or in code, and says what is wrong in our words
(``bot/config_rules.py``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml

from bot.config_rules import (
    Invalid,
    PlatformId,
    Section,
    Shape,
    above,
    at_least,
    between,
    convert,
    known_zone,
)
from bot.domain.phases import Phase


class ConfigError(Exception):
    """A config that cannot be used; the message names the key and what is wrong."""


SlackId = Annotated[
    str,
    PlatformId(r"[A-Z0-9]{1,32}", "a Slack id (capital letters and digits, like U0123ABCD or S0123ABCD)"),
]
DiscordId = Annotated[str, PlatformId(r"[0-9]{1,20}", "a Discord id (digits only, like 123456789012345678)")]


# --- the sections ---------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DatabaseConfig(Section):
    url: str = "sqlite+aiosqlite:///convene.db"


@dataclass(frozen=True, kw_only=True)
class VaultConfig(Section):
    """Where round keys live with ``anonymity.backend: vault`` (HashiCorp Vault, KV v2 engine)."""

    address: str = ""  # e.g. https://vault.internal:8200
    mount: str = "secret"
    path: str = "convene/round-keys"
    token_env: str = "VAULT_TOKEN"
    token_file: str | None = None  # read at every call: a token that Vault Agent keeps fresh
    namespace: str | None = None
    ca_cert: str | None = None
    timeout_seconds: Annotated[float, above(0)] = 5.0


@dataclass(frozen=True, kw_only=True)
class AnonymityConfig(Section):
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
class PhaseMinutes(Section):
    contribute: Annotated[int | None, at_least(1)] = None
    vote: Annotated[int | None, at_least(1)] = None
    goals: Annotated[int | None, at_least(1)] = None
    actions: Annotated[int | None, at_least(1)] = None

    def for_phase(self, phase: Phase) -> int | None:
        value = getattr(self, phase.value, None)
        return value if isinstance(value, int) else None


@dataclass(frozen=True, kw_only=True)
class TemplateConfig(Section):
    phase_minutes: PhaseMinutes = PhaseMinutes()
    # Continuous (as in Polis): contributions stay open while voting runs, released in batches.
    continuous: bool = False
    # Pre-moderation: ideas wait in the conveners' review list (text only) until one approves them.
    premoderation: bool = False


@dataclass(frozen=True, kw_only=True)
class ContinuousConfig(Section):
    """How continuous rounds release ideas while voting runs (see ``rounds.templates.*.continuous``)."""

    batch_min: Annotated[int, at_least(2)] = 5  # k: never fewer new ideas at once
    min_interval_minutes: Annotated[float, above(0)] = 10.0
    jitter_minutes: Annotated[float, at_least(0)] = 5.0  # a random delay on top, up to this
    min_participants: Annotated[int, at_least(2)] = 8  # fewer: ideas are released once, at phase close


@dataclass(frozen=True, kw_only=True)
class RoundsConfig(Section):
    min_contribution_chars: Annotated[int, at_least(1)] = 1
    max_contribution_chars: Annotated[int, between(1, 3000)] = 1000
    contributions_per_participant: Annotated[int, between(1, 50)] = 3
    sector_min_voters: Annotated[int, at_least(1)] = 5
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
class OutboxConfig(Section):
    poll_seconds: Annotated[float, above(0)] = 0.5
    # Private replies and DMs give up after this many failed attempts; public posts retry while
    # their round is open (see public_give_up_hours).
    max_attempts: Annotated[int, at_least(1)] = 8
    backoff_base_seconds: Annotated[float, above(0)] = 1.0
    backoff_max_seconds: Annotated[float, above(0)] = 300.0
    lease_seconds: Annotated[float, above(0)] = 60.0
    # This process's relay identity. None: "<host>-<n>", the lowest slot no live process on this host
    # holds, so a restart takes back the rows its predecessor had in flight at once.
    worker_id: Annotated[
        str | None, Shape(r"[A-Za-z0-9._:-]{1,64}", "1 to 64 letters, digits or . _ : - (like worker-1)")
    ] = None
    concurrency: Annotated[int, between(1, 1024)] = 64  # deliveries in flight at once, across conversations
    public_give_up_hours: Annotated[float, above(0)] = 24.0  # after the round closed or was cancelled
    stall_minutes: Annotated[float, above(0)] = 10.0  # a channel failing this long is reported


@dataclass(frozen=True, kw_only=True)
class SchedulerConfig(Section):
    poll_seconds: Annotated[float, above(0)] = 5.0


@dataclass(frozen=True, kw_only=True)
class FollowUpConfig(Section):
    """Following up a closed round's actions and goals (times in the round's time zone)."""

    timezone: Annotated[str, known_zone] = "UTC"  # a round's time zone until a convener sets one
    reminder_hour: Annotated[int, between(0, 23)] = 9  # local hour reminders are sent at
    due_soon_days: Annotated[int, between(0, 60)] = 3  # "due soon" this many days ahead; 0: none
    progress_days: Annotated[int, between(1, 92)] = 7  # the progress post is updated this often
    checkin_cadence: Literal["none", "weekly", "fortnightly", "monthly", "quarterly"] = "monthly"


@dataclass(frozen=True, kw_only=True)
class IngestConfig(Section):
    batch_max: Annotated[int, at_least(1)] = 200
    batch_wait_ms: Annotated[float, at_least(0)] = 2.0


@dataclass(frozen=True, kw_only=True)
class ConsoleConfig(Section):
    enabled: bool = False  # `convene console` always runs; `convene run` only when enabled
    conveners: list[str] = field(default_factory=lambda: ["maya"])


@dataclass(frozen=True, kw_only=True)
class HttpListen(Section):
    host: str = "127.0.0.1"
    port: Annotated[int, between(0, 65535)] = 3000
    path: str = "/slack/events"


@dataclass(frozen=True, kw_only=True)
class SlackConveners(Section):
    # The workspace these ids belong to: a Slack user id means something only in its workspace.
    # Single-token mode: the token's workspace when unset. OAuth mode: required with any ids.
    team_id: SlackId | None = None
    user_ids: list[SlackId] = field(default_factory=list)
    usergroup_ids: list[SlackId] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class SlackOAuth(Section):
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
    state_expiration_seconds: Annotated[int, between(60, 3600)] = 600
    token_cache_seconds: Annotated[float, at_least(0)] = 60.0  # how long a worker keeps a found token


@dataclass(frozen=True, kw_only=True)
class SlackConfig(Section):
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
class DiscordConveners(Section):
    user_ids: list[DiscordId] = field(default_factory=list)
    role_ids: list[DiscordId] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class DiscordConfig(Section):
    enabled: bool = False
    token_env: str = "DISCORD_TOKEN"
    guild_ids: list[DiscordId] = field(default_factory=list)
    conveners: DiscordConveners = DiscordConveners()
    api_base_url: str | None = None
    gateway_url: str | None = None
    shard_count: Annotated[int | None, at_least(1)] = None
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
class RetentionConfig(Section):
    # Who took part (the roster) and every other row that names a person is deleted this many days
    # after a round closes or is cancelled (0: at the next purge).
    roster_days: Annotated[int, at_least(0)] = 30
    # A round left in one phase with no deadline for this many days is cancelled and its key destroyed.
    idle_round_days: Annotated[int, at_least(1)] = 60


@dataclass(frozen=True, kw_only=True)
class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"  # json: one object a line, fixed keys (bot/logs.py)


@dataclass(frozen=True, kw_only=True)
class OpsConfig(Section):
    """``/healthz`` and ``/metrics`` (Prometheus), served by `convene run`."""

    port: Annotated[int | None, between(0, 65535)] = None  # None: not served
    host: str = "127.0.0.1"
    # /healthz answers 503 when the oldest due post has waited longer than this.
    max_relay_lag_seconds: Annotated[float, above(0)] = 120.0


@dataclass(frozen=True, kw_only=True)
class AppConfig(Section):
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
        config: AppConfig = convert(AppConfig, data)
    except Invalid as err:
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
