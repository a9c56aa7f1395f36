"""A1, the canary sweep of the logs: a round played at DEBUG through the real adapters (signed Slack
requests into slack-bolt, an unmodified discord.py client on the fake gateway), with every log
record of every library kept. No record may hold a person's id or name next to what they wrote, in
either log format (`logging.format: text` or `json`)."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.logs import configure
from tests.adapters.discord.rig import NAMES, make_rig
from tests.adapters.slack.rig import USERS, rig
from tests.platform_fakes.slack import FakeSlackWebAPI


@dataclass
class Kept:
    logger: str
    line: int
    text: str


class KeepAll(logging.Handler):
    """Every record as the configured formatter writes it (`configure` sets it on root's handlers)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.kept: list[Kept] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.kept.append(Kept(record.name, record.lineno, self.format(record)))


@contextlib.contextmanager
def logging_at_debug(kind: str = "text") -> Iterator[KeepAll]:
    """`convene run` with `logging.level: DEBUG` and `logging.format: kind`, every record kept."""
    root = logging.getLogger()
    level = root.level
    formats = [(h, h.formatter) for h in root.handlers]
    keep = KeepAll()
    root.addHandler(keep)
    configure("DEBUG", "json" if kind == "json" else "text")
    try:
        yield keep
    finally:
        root.removeHandler(keep)
        root.setLevel(level)
        for handler, was in formats:
            handler.setFormatter(was)


def level_of(k: Kept) -> str:
    if k.text.startswith("{"):
        return str(json.loads(k.text)["level"])
    return k.text.split()[2]


def fields_are_fixed(kept: list[Kept]) -> bool:
    """JSON lines carry the formatter's keys and nothing else (no `extra` can add a payload)."""
    allowed = {"time", "level", "logger", "message", "exc_type", "stack"}
    return all(set(json.loads(k.text)) <= allowed for k in kept)


def canary() -> str:
    return f"canary{secrets.token_hex(8)}"


def co_occurrences(kept: list[Kept], people: list[str], canaries: list[str]) -> list[str]:
    """Where a person and a canary meet in one record: the logger and line only, never the text."""
    named = [re.compile(rf"(?<![A-Za-z0-9]){re.escape(p)}(?![A-Za-z0-9])", re.I) for p in people]
    return [
        f"{k.logger}:{k.line}"
        for k in kept
        if any(c in k.text for c in canaries) and any(n.search(k.text) for n in named)
    ]


FORMATS = pytest.mark.parametrize("kind", ["text", "json"])


@FORMATS
async def test_A1_a_slack_round_at_debug_logs_no_person_next_to_an_idea(tmp_path: Path, kind: str) -> None:
    ideas = {who: f"Idea {canary()} from the street" for who in ("alice", "bob", "carol")}
    with logging_at_debug(kind) as keep:
        async with FakeSlackWebAPI() as fake, rig(fake, tmp_path) as r:
            await r.form("maya", "start", {"title": "Safer", "purpose": "Goals", "template": "standard"})
            for who in ideas:
                await r.form(who, "join", {"sector": "resident"})
            for who, text in ideas.items():
                await r.form(who, "contribute", {"text": text})
                await r.command(who, "mine")  # one's own idea, back privately: text next to the id
            await r.command("maya", "next")
            for who in ideas:
                for action_id in r.channel_buttons(r":v:\d+:a$"):
                    await r.click(who, action_id)
            await r.command("maya", "next")
    assert any(level_of(k) == "DEBUG" for k in keep.kept), "the round logged at DEBUG"
    assert any(t in r.ephemerals_text(who) for who, t in ideas.items()), "the canary went out"
    if kind == "json":
        assert fields_are_fixed(keep.kept)
    people = list(USERS.values()) + list(USERS)
    assert co_occurrences(keep.kept, people, list(ideas.values())) == []


@FORMATS
async def test_A1_a_discord_round_at_debug_logs_no_person_next_to_an_idea(tmp_path: Path, kind: str) -> None:
    ideas = {who: f"Idea {canary()} by the river" for who in ("alice", "bob", "carol")}
    with logging_at_debug(kind) as keep:
        async with make_rig(tmp_path) as rig, rig.running():
            rid = await rig.start_round()
            for who in ideas:
                await rig.join(who, rid)
            for who, text in ideas.items():
                await rig.contribute(who, rid, text)
                assert text in await rig.reply(await rig.slash(who, "mine"))
            await rig.confirmed(await rig.slash("owner", "next"), "Cleaner river", "vote")
            await rig.wait_public(lambda m: f"cv:{rid}:deck" in rig.buttons(m))
            for who in ideas:  # through the deck: one card per idea, Agree on each
                await rig.open_deck(who, rid)
                for _ in ideas:
                    await rig.press(who, "Agree")
            await rig.confirmed(await rig.slash("owner", "next"), "Cleaner river", "goals")
            users = rig.users
    assert any(level_of(k) == "DEBUG" for k in keep.kept), "the round logged at DEBUG"
    if kind == "json":
        assert fields_are_fixed(keep.kept)
    people = [str(u["id"]) for u in users.values()] + [str(u["username"]) for u in users.values()]
    people += list(NAMES.values())
    assert co_occurrences(keep.kept, people, list(ideas.values())) == []


def test_A1_a_library_warning_keeps_its_wording_but_not_the_payload() -> None:
    body = {"type": "view_submission", "user": {"id": "U0ALICE"}, "view": {"value": "my secret idea"}}
    with logging_at_debug() as keep:
        # bolt's framework logger warns about an unhandled request with the whole body in it.
        logging.getLogger("convene.slack.bolt").warning("Unhandled request (%s)", body)
        logging.getLogger("slack_sdk.web.base_client").debug("Sending a request: %s", body)
        logging.getLogger("slack_sdk.web.base_client").setLevel(logging.DEBUG)  # someone lowers it
        logging.getLogger("slack_sdk.web.base_client").debug("Sending a request: %s", body)
        logging.getLogger("slack_sdk.web.base_client").setLevel(logging.NOTSET)
        try:
            raise ValueError("my secret idea from U0ALICE")
        except ValueError:
            logging.getLogger("discord.client").exception("Ignoring exception in %r", "my secret idea")
        logging.getLogger("convene.relay").info("a %s timer fired", "phase_deadline")
    texts = [k.text for k in keep.kept]
    assert not any("secret" in t or "U0ALICE" in t for t in texts), texts
    assert any(t.endswith("convene.slack.bolt: Unhandled request (…)") for t in texts)
    assert sum("withheld" in t for t in texts) == 1  # the pinned debug record is never made
    assert any(t.endswith("discord.client: Ignoring exception in … [ValueError]") for t in texts)
    assert any(t.endswith("convene.relay: a phase_deadline timer fired") for t in texts)  # ours, as is


def test_A1_json_lines_keep_no_extra_field_and_no_exception_message() -> None:
    with logging_at_debug("json") as keep:
        try:
            raise ValueError("my secret idea from U0ALICE")
        except ValueError:
            logging.getLogger("convene.relay").exception("a lane failed")
        logging.getLogger("convene.relay").info(
            "delivered", extra={"text": "my secret idea", "user": "U0ALICE"}
        )
    texts = [k.text for k in keep.kept]
    assert not any("secret" in t or "U0ALICE" in t for t in texts), texts
    failed = json.loads(next(t for t in texts if "a lane failed" in t))
    assert failed["exc_type"] == "ValueError"
    assert failed["stack"]
    assert fields_are_fixed(keep.kept)
