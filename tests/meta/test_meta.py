"""Things that must never rot: the example config, the prompts, the id codec, the sanitiser,
the migrations, the demo, and the command line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import AppConfig, ConfigError, OutboxConfig, load_config, parse_config
from bot.domain import commands
from bot.ids import ComponentId
from bot.messages import Message, Part
from bot.persistence.db import make_engine
from bot.persistence.migrate import current_revision, upgrade
from bot.persistence.tables import Base, ConversationRow
from bot.prompts import PromptKey, Prompts
from bot.sanitize import canonical_text, comparison_key, one_line
from bot.service.handlers import build_registry
from bot.service.outbox import public_row
from tests.hostile_text import FRAGMENTS
from tests.platform_fakes.markup import hidden_characters

ROOT = Path(__file__).resolve().parents[2]


def test_the_example_config_is_valid_and_documents_every_key() -> None:
    cfg = load_config(ROOT / "config.example.yaml")
    example = yaml.safe_load((ROOT / "config.example.yaml").read_text())

    def keys(model: Any, prefix: str = "") -> set[str]:
        out = set()
        for f in fields(model):
            out.add(prefix + f.name)
            value = getattr(model, f.name)
            if is_dataclass(value) and f.name != "templates":
                out |= keys(value, prefix + f.name + ".")
        return out

    def present(data: dict[str, Any], prefix: str = "") -> set[str]:
        out = set()
        for k, v in data.items():
            out.add(prefix + k)
            if isinstance(v, dict) and k != "templates":
                out |= present(v, prefix + k + ".")
        return out

    assert keys(cfg) <= present(example)


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"rounds": {"max_contribution_chars": "lots"}}, "rounds.max_contribution_chars"),
        ({"slack": {"mode": "carrier-pigeon"}}, "slack.mode"),
        ({"databse": {}}, "databse"),
        ({"rounds": {"default_template": "nope"}}, "default_template"),
        (
            {"rounds": {"templates": {"quick": {"phase_minutes": {"vot": 5}}}}},
            "rounds.templates.quick.phase_minutes.vot: not a known key",
        ),
        ({"rounds": {"min_contribution_chars": 0}}, "rounds.min_contribution_chars: must be at least 1"),
        ({"rounds": {"max_contribution_chars": 5000}}, "rounds.max_contribution_chars: must be at most 3000"),
        ({"outbox": {"poll_seconds": 0}}, "outbox.poll_seconds: must be more than 0"),
        ({"ops": {"port": True}}, "ops.port: expected a whole number"),
        ({"outbox": {"worker_id": "worker 1"}}, "outbox.worker_id: 'worker 1' is not 1 to 64 letters"),
        ({"followup": {"timezone": "Mars/Olympus"}}, "followup.timezone: unknown time zone"),
        ({"rounds": {"sectors": []}}, "rounds: sectors must list at least one sector"),
    ],
)
def test_a_bad_config_names_the_key(data: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)):
        parse_config(data)


def test_every_mistake_in_a_section_is_named_on_one_line() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"outbox": {"max_attempts": 0, "concurrency": 2000}})
    assert "\n" not in str(err.value)
    assert "outbox.max_attempts: must be at least 1" in str(err.value)
    assert "outbox.concurrency: must be at most 1024" in str(err.value)


def test_a_section_built_in_code_is_held_to_the_same_rules() -> None:
    with pytest.raises(ValueError, match="concurrency: must be at most 1024"):
        OutboxConfig(concurrency=2000)
    with pytest.raises(ValueError, match="shard_ids needs shard_count"):
        replace(AppConfig().discord, shard_ids=[0])
    assert replace(AppConfig().outbox, poll_seconds=1).poll_seconds == 1.0


def test_platform_ids_may_be_yaml_integers_or_strings_and_stay_exact(tmp_path: Path) -> None:
    path = tmp_path / "ids.yaml"
    path.write_text(
        "discord:\n"
        "  guild_ids: [18446744073709551615]\n"  # the largest snowflake: beyond a float's 2^53
        "  conveners:\n"
        "    user_ids: [123456789012345678, '223456789012345678']\n"
        "    role_ids: [900000000000000001]\n"
        "slack:\n"
        "  conveners: {user_ids: [U0MAYA, ' W0BOB '], usergroup_ids: ['S0CONV']}\n"
    )
    cfg = load_config(path)
    assert cfg.discord.conveners.user_ids == ["123456789012345678", "223456789012345678"]
    assert cfg.discord.conveners.role_ids == ["900000000000000001"]
    assert cfg.discord.guild_ids == ["18446744073709551615"]
    assert cfg.slack.conveners.user_ids == ["U0MAYA", "W0BOB"]
    assert cfg.slack.conveners.usergroup_ids == ["S0CONV"]


@pytest.mark.parametrize(
    ("ids", "named"),
    [
        ({"discord": {"conveners": {"user_ids": [1.2345678901234568e17]}}}, "discord.conveners.user_ids.0"),
        ({"discord": {"conveners": {"role_ids": [True]}}}, "discord.conveners.role_ids.0"),
        ({"discord": {"guild_ids": ["general"]}}, "discord.guild_ids.0"),
        ({"slack": {"conveners": {"user_ids": ["<@U0MAYA>"]}}}, "slack.conveners.user_ids.0"),
        ({"slack": {"conveners": {"usergroup_ids": [""]}}}, "slack.conveners.usergroup_ids.0"),
    ],
)
def test_an_id_that_is_not_one_is_refused_by_its_key(ids: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)):
        parse_config(ids)


def test_check_config_exits_non_zero_without_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("slack:\n  mode: carrier-pigeon\n")
    run = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "check-config", str(bad)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert run.returncode == 2
    assert "slack.mode" in run.stderr
    assert "Traceback" not in run.stderr
    ok = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "check-config", str(ROOT / "config.example.yaml")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert ok.returncode == 0, ok.stderr


SAMPLE: dict[str, Any] = {
    "title": "T",
    "purpose": "P",
    "phase": "vote",
    "deadline": None,
    "participants": 3,
    "per_participant": 3,
    "code": "ABCD2345",
    "count": 2,
    "limit": 3,
    "label": 1,
    "max": 1000,
    "rank": 1,
    "text": "x",
    "agree": 1,
    "disagree": 0,
    "pass": 0,
    "score": 50,
    "goals": [],
    "ideas": [],
    "actions": [],
    "number": 1,
    "idea": None,
    "outcome": "o",
    "metric": "m",
    "unit": "u",
    "baseline": "1",
    "target": "2",
    "pilot": False,
    "review_date": None,
    "goal": 1,
    "goal_title": "g",
    "owner": None,
    "due": "2027-01-01",
    "joined": True,
    "mine": 1,
    "convener": False,
    "common_ground": True,
    "divisive": False,
    "urgency": 3.0,
    "by_sector": [{"name": "business", "agree": 80}],
    "sectors_hidden": True,
    "sector_k": 5,
    "idle_days": 60,
    "impact": None,
    "unknown": None,
    "code_": None,
    "subcommands": [{"name": "link", "arg": "code", "required": True}],
    # follow-up
    "status": "on_track",
    "sponsor": "s",
    "resources": None,
    "data_source": "d",
    "current": "3",
    "progress": {"percent": 40, "filled": 4, "width": 10, "met": False},
    "decision": "scale",
    "decision_note": "n",
    "decided_on": "2027-01-01",
    "which": "mine",
    "rounds": [],
    "kind": "due_soon",
    "days": 3,
    "to_owner": True,
    "round": "R",
    "platform": "discord",
    "channel": "C1",
    "minutes": 12,
    "noted": False,
    "on": True,
    "zone": "UTC",
    "hour": 9,
    "value": "3",
    "note": "n",
    "today": "2027-01-01",
    "week": 1,
    "counts": {"done": 1, "open": 1, "overdue": 0},
    "over": False,
    "since": "2026-12-01",
    "done": [],
    "open": [],
    "overdue": [],
    "pilots": [],
    "stage": 1,
    "first": None,
    "now": None,
    "k": 5,
    "fixed": None,
    "closed": False,
    "median": None,
    "followup": {"every": 7},
    "continuous": None,
    "batch_min": None,
    "batch": False,
    "merged": True,
    "voted": 3,
    "total": 9,
    # moderation
    "premoderation": None,
    "review": False,
    "shown": 1,
    "n": 1,
    "reason": "r",
}
# Keys two families of templates use differently: each family's own value.
OVERRIDES: dict[str, dict[str, Any]] = {
    "vote/deck_": {"kind": "recorded", "current": "agree"},
}
# Templates that list ideas render each item's fields.
LISTS = {
    PromptKey.RELEASE_LIST: [{"label": 1, "preview": "x"}, {"label": 2, "preview": "", "removed": True}],
    PromptKey.RESULTS_LIST: [
        {
            **{k: SAMPLE[k] for k in ("rank", "label", "agree", "disagree", "pass", "score")},
            **{k: SAMPLE[k] for k in ("common_ground", "urgency", "impact", "by_sector")},
            **{k: SAMPLE[k] for k in ("sectors_hidden", "sector_k")},
            "preview": "x",
            "divisive": False,
        }
    ],
}


@pytest.mark.parametrize("key", list(PromptKey))
def test_every_prompt_key_has_a_template_that_renders(key: PromptKey) -> None:
    prompts = Prompts()
    params = dict(SAMPLE)
    if key == PromptKey.ERROR:
        params["code"] = "not_convener"
    if key in LISTS:
        params["ideas"] = LISTS[key]
    for prefix, values in OVERRIDES.items():
        if key.value.startswith(prefix):
            params.update(values)
    assert prompts.render(key, params).strip()


def test_every_error_code_raised_in_code_has_a_template() -> None:
    codes = set()
    for path in [*(ROOT / "bot").rglob("*.py"), *(ROOT / "adapters").rglob("*.py")]:
        codes |= set(re.findall(r'DomainError\(\s*"([a-z_]+)"', path.read_text()))
    have = {p.stem for p in (ROOT / "prompts" / "en" / "errors").glob("*.j2")}
    assert codes
    assert codes <= have, codes - have


def test_every_registered_form_and_subcommand_has_its_labels() -> None:
    labels = Prompts().labels
    registry = build_registry()
    forms = [r.form.name for r in registry.routes if r.form]
    assert forms
    for name in forms:
        assert name in labels["form_titles"]
        assert name in labels["form_submit"]
        assert len(labels["form_titles"][name]) <= 24  # Slack's modal title limit
    subcommands = registry.subcommands()
    assert subcommands
    for route in subcommands:
        assert route.text is not None
        assert 0 < len(labels["commands"][route.text.name]) <= 100  # Discord's description limit
        if route.text.arg:
            assert f"option_{route.text.arg.name}" in labels["commands"]


def test_every_command_has_one_route_and_every_route_a_way_in() -> None:
    registry = build_registry()
    declared = {
        obj
        for obj in vars(commands).values()
        if isinstance(obj, type)
        and is_dataclass(obj)
        and obj.__module__ == commands.__name__
        and obj is not commands.Context
    }
    assert {r.command for r in registry.routes} == declared
    for route in registry.routes:
        assert route.text or route.button or route.form or route.timer, route.command.__name__
        assert (route.handler is None) != (route.batch is None)
        if route.button and route.button.build is None:
            assert route.form is not None
            assert route.button.arity <= 1
        if route.text and route.text.build is None:
            assert route.form is not None


def test_help_lists_every_subcommand() -> None:
    registry = build_registry()
    subs = [
        {"name": r.text.name, "arg": r.text.arg.name if r.text.arg else None, "required": False}
        for r in registry.subcommands()
        if r.text
    ]
    shown = Prompts().render(PromptKey.HELP, {"unknown": None, "subcommands": subs})
    for sub in subs:
        assert f"/convene {sub['name']}" in shown


def test_no_public_message_can_carry_an_author_field() -> None:
    conv = ConversationRow(id="c", round_id="r", platform="slack", workspace_id="T", channel_id="C")
    for leak in ({"author": "x"}, {"ideas": [{"sector": "business"}]}, {"user_id": "U1"}):
        with pytest.raises(ValueError, match="attribution"):
            public_row("r", conv, Message((Part(PromptKey.RELEASE_IDEA, leak),)))


ids = st.text(alphabet="abcdef0123456789", min_size=1, max_size=32)


@given(
    ids,
    st.sampled_from(["v", "rate", "take", "form"]),
    st.lists(st.from_regex(r"[0-9A-Za-z_]{1,8}", fullmatch=True), max_size=3),
)
def test_component_ids_round_trip_within_discords_limit(round_id: str, verb: str, args: list[str]) -> None:
    cid = ComponentId(round_id, verb, tuple(args))
    encoded = cid.encode()
    assert len(encoded) <= 100
    assert ComponentId.decode(encoded) == cid


@given(st.text())
def test_unknown_component_ids_decode_to_none_or_something_valid(value: str) -> None:
    cid = ComponentId.decode(value)
    assert cid is None or ComponentId.decode(cid.encode()) == cid


# Text made of what causes trouble: markup of both dialects, mention syntax, entities, emoji codes,
# joiners, selectors, controls, and fragments of the threat model's injection matrix.
_PIECES = [
    *"*_~`|>#-[]()<>@!:&;^ \n\tabU1",
    *("&amp;", "&lt;", "&gt;", "<@", "<!", "<#", "<:", "</", "**", "__", "~~", "||", "```", "https://x.y"),
    *(":thumbsup:", ":skin-tone-2:", "\u200d", "\u200c", "\ufe0f", "👍", "❤", "\u202e", "\U000e0041", "\x85"),
    *("everyone", "here", "\u0301", "é", "ن", "\ud800", "\ufdd0"),
    *FRAGMENTS,
]
# Mention syntax either platform would render: Slack's <@…>, <#…>, <!…>; Discord's users, roles,
# channels, commands, custom emoji, timestamps and guide links; broadcasts typed out.
MENTION = re.compile(
    r"<[@#!][^<>]*>|</[^<>:]+:\d+>|<a?:\w+:\d+>|<t:-?\d+(?::\w)?>|<id:\w+>"
    r"|(?<![\w@＠])@(?:everyone|here|channel)\b",
    re.I,
)
troublesome = st.one_of(st.text(), st.lists(st.sampled_from(_PIECES), max_size=30).map("".join))


@settings(max_examples=1000, deadline=None)  # the first call builds the tables of hidden characters
@given(troublesome)
def test_canonical_text_is_idempotent_and_leaves_nothing_hidden_or_live(text: str) -> None:
    once = canonical_text(text)
    assert canonical_text(once) == once
    line = one_line(text)
    assert one_line(line) == line
    assert "\n" not in line
    for out in (once, line):
        assert hidden_characters(out) == []
        assert not MENTION.search(out), out
    assert comparison_key(once) == comparison_key(text)


async def test_migrations_build_exactly_the_declared_schema(db_url: str) -> None:
    from tests.harness import reset_schema

    engine = make_engine(db_url)
    try:
        await reset_schema(engine)
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)
        await upgrade(engine)
        assert await current_revision(engine) is not None
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
            )
        assert diff == []
    finally:
        await engine.dispose()


def test_demo_plays_a_whole_round_and_writes_the_report(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "demo", "--out", str(tmp_path), "--quiet"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["round"]["phase"] == "closed"
    assert set(report["round"]) >= {
        "id",
        "title",
        "purpose",
        "phase",
    }
    assert len(report["ideas"]) >= 8
    assert report["goals"]
    assert report["actions"]
    for idea in report["ideas"]:
        assert set(idea) >= {"id", "label", "text", "agree", "disagree", "pass", "score"}
        assert not set(idea) & {"author", "user", "user_id", "platform", "sector", "workspace"}
    for goal in report["goals"]:
        assert set(goal) >= {
            "title",
            "outcome",
            "metric",
            "unit",
            "baseline",
            "target",
            "deadline",
            "pilot",
            "review_date",
        }
    assert all(set(a) >= {"title", "goal", "owner", "due"} for a in report["actions"])
    transcript = (tmp_path / "transcript.txt").read_text()
    # Every button shown carries a label from labels.yaml (never the key's fallback); labels with
    # places ("Make Idea {label} a goal") are filled in.
    patterns = [
        re.compile(re.sub(r"\\\{\w+\\\}", r"\\d+", re.escape(label)) + "$")
        for label in Prompts().labels["buttons"].values()
    ]
    rows = [line for line in transcript.splitlines() if line.startswith("  [")]
    shown = {label for row in rows for label in re.findall(r"\[([^\]]+)\]", row)}
    assert shown
    for label in shown - {"image: consensus.png"}:
        assert any(p.match(label) for p in patterns), label
    assert "slack #city-goals" in transcript
    assert "discord #common-goals" in transcript
    assert "# Common goals" in (tmp_path / "report.md").read_text()


async def test_demo_transcript_matches_the_golden_story(tmp_path: Path) -> None:
    from adapters.console.demo import run_demo

    await run_demo(tmp_path)
    golden = Path(__file__).with_name("demo_transcript.golden.txt")
    got = (tmp_path / "transcript.txt").read_text()
    if not golden.exists():  # first run writes it; review and commit it
        golden.write_text(got)
    assert got == golden.read_text()


def test_version_flag() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "--version"], capture_output=True, text=True, cwd=ROOT
    )
    assert run.returncode == 0
    assert "convene" in run.stdout


def test_app_config_defaults_are_sane() -> None:
    assert AppConfig().rounds.contributions_per_participant == 3


def test_run_names_what_is_missing_instead_of_failing_later(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        f"database: {{url: 'sqlite+aiosqlite:///{tmp_path}/x.db'}}\n"
        "slack: {enabled: true}\ndiscord: {enabled: true}\n"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "DISCORD_TOKEN")
    }
    run = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert run.returncode == 2
    assert "SLACK_BOT_TOKEN" in run.stderr
    assert "Traceback" not in run.stderr
    config.write_text("logging: {level: INFO}\n")
    run = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert run.returncode == 2
    assert "no adapter is enabled" in run.stderr
