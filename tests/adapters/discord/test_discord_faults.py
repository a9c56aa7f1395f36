"""Faults stay small on Discord: an interaction frame discord.py cannot parse, one without a
``member``, or one carrying text no database can store gets a clear private answer (when its id and
token read), never ``internal_error``, never a traceback, and the client carries on. The real
discord.py client through the fake gateway."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.adapters.discord.rig import Rig, make_rig
from tests.platform_fakes import discord_payloads as p
from tests.platform_fakes.discord import InteractionRecord

JSON = dict[str, Any]


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info], [
        r.getMessage() for r in caplog.records if r.exc_info
    ]
    assert "Traceback" not in caplog.text


async def answered_privately(rig: Rig, rec: InteractionRecord | None) -> str:
    """The text the sender saw: the first response itself, or the follow-up after a deferral."""
    assert rec is not None
    body = await rec.callback()
    if body["type"] == 4:
        assert body["data"]["flags"] & p.FLAG_EPHEMERAL
        return str(body["data"]["content"])
    return await rig.reply(rec)


async def still_answers(rig: Rig) -> None:
    rec = await rig.slash("alice", "help")
    assert "/convene" in await rig.reply(rec)


def drop(*path: str | int) -> Callable[[JSON], None]:
    def apply(payload: JSON) -> None:
        node: Any = payload
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return apply


def put(value: Any, *path: str | int) -> Callable[[JSON], None]:
    def apply(payload: JSON) -> None:
        node: Any = payload
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return apply


UNPARSEABLE: dict[str, tuple[str, Callable[[JSON], None]]] = {
    "click with data null": ("click", put(None, "data")),
    "click without custom_id": ("click", drop("data", "custom_id")),
    "click with an int custom_id": ("click", put(7, "data", "custom_id")),
    "click without component_type": ("click", drop("data", "component_type")),
    "modal submit with data null": ("modal", put(None, "data")),
    "modal submit without components": ("modal", drop("data", "components")),
    "modal submit with a list custom_id": ("modal", put(["cv"], "data", "custom_id")),
    "command without version": ("slash", drop("version")),
    "command with a guild id that is not a number": ("slash", put("guild-x", "guild_id")),
    "command with an application id that is not a number": ("slash", put("app", "application_id")),
    "command with a member that is a string": ("slash", put("alice", "member")),
    # Read later, in discord.py's own tasks: checked before it parses the frame.
    "command with a guild id of {}": ("slash", put({}, "guild_id")),
    "click with a channel id of []": ("click", put([], "channel_id")),
    "click on a message whose flags are an object": ("click", put({}, "message", "flags")),
    "click on a message without components": ("click", drop("message", "components")),
    "click on a message with seven rows": (
        "click",
        lambda payload: payload["message"].update(components=payload["message"]["components"] * 7),
    ),
    "click on a message whose button id is an object": (
        "click",
        lambda payload: payload["message"]["components"][0]["components"][0].update(custom_id={}),
    ),
}


@pytest.mark.parametrize("case", list(UNPARSEABLE))
async def test_frames_discord_py_cannot_parse_are_answered_and_the_client_carries_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    kind, mutate = UNPARSEABLE[case]
    async with make_rig(tmp_path) as rig, rig.running():
        await rig.start_round()
        payload = {
            "click": lambda: rig.fake.click(rig.buttons(rig.public()[0])[0], user=rig.users["alice"]),
            "modal": lambda: rig.fake.submit_modal(
                "cv:-:form:join", {"sector": ["x"]}, user=rig.users["alice"]
            ),
            "slash": lambda: rig.fake.slash("convene", "status", user=rig.users["alice"]),
        }[kind]()
        mutate(payload)
        rec = await rig.fake.send_interaction(payload)
        assert await answered_privately(rig, rec) == rig.error_text("malformed_request")
        assert len(rec.attempts) == 1  # answered once
        await still_answers(rig)
        assert "event it could not read" in caplog.text or "refused an interaction" in caplog.text
        no_traceback(caplog)


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        "INTERACTION",
        5,
        {"type": 3},
        {"id": "1", "type": 3, "data": None},
        {"token": "t"},
        {"id": "1", "type": 2, "token": {"a": 1}},  # discord.py would carry this token into every handler
        {"id": "1", "type": [2], "token": "t"},
    ],
    ids=repr,
)
async def test_frames_without_an_id_and_token_are_dropped_quietly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, payload: Any
) -> None:
    caplog.set_level(logging.INFO)
    async with make_rig(tmp_path) as rig, rig.running():
        await rig.fake.send_interaction(payload)
        await still_answers(rig)
        assert "dropped an interaction with no id, token or type to answer" in caplog.text
        no_traceback(caplog)


@pytest.mark.parametrize(
    ("event", "data"),
    [
        ("GUILD_CREATE", {"id": "x"}),
        ("GUILD_CREATE", None),
        ("MESSAGE_CREATE", {"id": "1"}),
        ("CHANNEL_UPDATE", []),
        ("GUILD_MEMBER_UPDATE", {"guild_id": "nope"}),
        ("NOT_AN_EVENT", {"x": 1}),
    ],
)
async def test_other_events_discord_py_cannot_parse_are_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, event: str, data: Any
) -> None:
    async with make_rig(tmp_path) as rig, rig.running():
        await rig.fake.dispatch(event, data)
        await still_answers(rig)
        assert len(rig.fake.identifies) == 1  # the same connection
        no_traceback(caplog)


async def test_a_guild_interaction_without_member_gets_a_clear_answer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """discord.py leaves ``user`` MISSING; it used to raise in the adapter and answer internal_error."""
    async with make_rig(tmp_path) as rig, rig.running():
        rid = await rig.start_round()
        for payload in (
            rig.fake.slash("convene", "status", user=rig.users["alice"]),
            rig.fake.click(f"cv:{rid}:join", user=rig.users["alice"]),
            rig.fake.submit_modal(f"cv:{rid}:form:join", {"sector": ["resident"]}, user=rig.users["alice"]),
        ):
            del payload["member"]
            rec = await rig.fake.send_interaction(payload)
            assert await answered_privately(rig, rec) == rig.error_text("malformed_request")
        assert await rig.scalar("select count(*) from participants") == 0
        assert "internal_error" not in caplog.text
        no_traceback(caplog)


@pytest.mark.parametrize("code", ["AB\ud800CD", "AB\x00CD", "\udfff"])
async def test_a_link_code_no_database_can_store_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, code: str
) -> None:
    """A lone surrogate reached the database driver (UnicodeEncodeError); PostgreSQL refuses a NUL."""
    async with make_rig(tmp_path) as rig, rig.running():
        rec = await rig.slash("owner", "link", {"code": code})
        assert await answered_privately(rig, rec) == rig.error_text("malformed_request")
        no_traceback(caplog)


async def test_text_no_database_can_store_anywhere_in_an_interaction_is_refused(tmp_path: Path) -> None:
    async with make_rig(tmp_path) as rig, rig.running():
        rid = await rig.start_round()
        name = copy.deepcopy(rig.users["bob"])
        name["global_name"] = "Bob\ud800"
        cases = [
            rig.fake.click(f"cv:{rid}:join", user=name),
            rig.fake.submit_modal(f"cv:{rid}:form:join", {"sector": ["res\x00ident"]}, user=rig.users["bob"]),
        ]
        deep: Any = "x"
        for _ in range(200):  # nesting no interaction has (a recursive walk used to give up here)
            deep = {"type": 1, "components": [deep]}
        cases.append(rig.fake.submit_modal(f"cv:{rid}:form:join", {}, user=rig.users["bob"]))
        cases[-1]["data"]["components"] = [deep]
        for payload in cases:
            rec = await rig.fake.send_interaction(payload)
            assert await answered_privately(rig, rec) == rig.error_text("malformed_request")
        assert await rig.scalar("select count(*) from participants") == 0


@pytest.mark.parametrize(
    "mutate",
    [
        put(None, "data"),
        put("status", "data"),
        put(5, "data", "name"),
        put("x", "data", "options"),
        put([None], "data", "options"),
        put({"users": {"1": None}}, "data", "resolved"),
        put([{"name": "status", "type": 1, "options": [{"name": "x", "value": {}}]}], "data", "options"),
        put([{"name": "link", "type": 1, "options": [{"name": "code", "type": 3}]}], "data", "options"),
        put(
            [{"name": "status", "type": 1, "options": [{"name": "u", "type": 6, "value": "1"}]}],
            "data",
            "options",
        ),
        put(0, "data", "type"),  # a context menu command: convene has none
    ],
)
async def test_commands_the_command_tree_cannot_read_are_refused_before_it_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mutate: Callable[[JSON], None]
) -> None:
    """The tree reads command data in a task of its own, where an error was a traceback and no answer."""
    async with make_rig(tmp_path) as rig, rig.running():
        payload = rig.fake.slash("convene", "status", user=rig.users["alice"])
        mutate(payload)
        rec = await rig.fake.send_interaction(payload)
        assert await answered_privately(rig, rec) == rig.error_text("malformed_request")
        await still_answers(rig)
        no_traceback(caplog)


async def test_an_interaction_for_another_application_or_with_an_odd_name_is_refused(tmp_path: Path) -> None:
    async with make_rig(tmp_path) as rig, rig.running():
        payload = rig.fake.slash("convene", "status", user=rig.users["alice"])
        payload["application_id"] = "1"  # follow-ups on its token would go to another application
        rec = await rig.fake.send_interaction(payload)
        assert await answered_privately(rig, rec) == rig.error_text("malformed_request")
        payload = rig.fake.slash("convene", "status", user=rig.users["alice"])
        payload["member"]["user"]["username"] = 5
        payload["member"]["user"]["global_name"] = None
        rec = await rig.fake.send_interaction(payload)
        assert await answered_privately(rig, rec) == rig.error_text("malformed_request")


async def test_an_autocomplete_request_is_left_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No convene command offers autocomplete; a frame asking for it is not a message to answer."""
    async with make_rig(tmp_path) as rig, rig.running():
        payload = rig.fake.slash("convene", "link", {"code": "AB"}, user=rig.users["alice"])
        payload["type"] = p.AUTOCOMPLETE
        rec = await rig.fake.send_interaction(payload)
        await still_answers(rig)
        assert rec is not None
        assert rec.response is None
        no_traceback(caplog)


async def test_unexpected_errors_are_logged_without_traceback_or_payload(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with make_rig(tmp_path) as rig, rig.running() as client:
        core = client.core
        assert core is not None

        async def bug(*args: Any, **kw: Any) -> None:
            raise RuntimeError("SECRET the payload of a request")

        core.handle = bug  # type: ignore[method-assign]
        rec = await rig.slash("alice", "status")
        assert await rig.reply(rec) == rig.error_text("internal_error")
        assert "discord interaction failed: RuntimeError at" in caplog.text
        assert "SECRET" not in caplog.text
        no_traceback(caplog)
