"""Many workspaces, driven as Slack drives them: two workspaces install the app through the OAuth
redirect flow (the fake Slack exchanges each code at ``oauth.v2.access``), a signed request from each
is answered with that workspace's own token (the fake records the token of every call), and a
workspace that removes the app gets nothing more."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import MetaData, select, text

from adapters.slack import runner
from adapters.slack.app import web_app
from adapters.slack.oauth import manifest_scopes
from adapters.slack.port import SlackChatPort
from bot.app import build_app
from bot.config import AppConfig, ConfigError, DatabaseConfig, SlackConfig, SlackConveners, SlackOAuth
from bot.keys import MemoryKeyStore
from bot.messages import Block, Rendered
from bot.persistence.tables import Base, ConversationRow, OutboxRow
from bot.ports import DeliveryError, FixedClock
from bot.refs import ConversationRef, Platform
from bot.service.outbox import post_everywhere
from tests.adapters.slack.rig import PATH, Rig
from tests.platform_fakes.slack import FakeSlackWebAPI, SlackClientSim, serve_aiohttp_app
from tests.platform_fakes.slack_payloads import SlackPayloads, SlackWorkspace

ALPHA = SlackWorkspace(team_id="T0ALPHA", team_domain="alpha", team_name="Alpha City", bot_user_id="U0BOTA")
BETA = SlackWorkspace(team_id="T0BETA", team_domain="beta", team_name="Beta Town", bot_user_id="U0BOTB")
TOKENS = {ALPHA.team_id: "xoxb-alpha-token", BETA.team_id: "xoxb-beta-token"}
ENV = {"SLACK_CLIENT_ID": "111.222", "SLACK_CLIENT_SECRET": "client-secret"}
START = {"title": "Safer streets", "purpose": "Agree common goals", "template": "standard"}


def oauth_config(fake: FakeSlackWebAPI, tmp_path: Path) -> AppConfig:
    return AppConfig(
        database=DatabaseConfig(url=f"sqlite+aiosqlite:///{tmp_path}/t.db"),
        slack=SlackConfig(
            enabled=True,
            mode="http",
            api_base_url=fake.base_url,
            oauth=SlackOAuth(enabled=True),
            conveners=SlackConveners(team_id=ALPHA.team_id, user_ids=["U0DAN"]),  # Alpha's Dan
        ),
    )


@contextlib.asynccontextmanager
async def oauth_rig(fake: FakeSlackWebAPI, tmp_path: Path) -> AsyncIterator[Rig]:
    """The app as `convene run` builds it with ``slack.oauth``: the port first (no token of its own),
    then the app, then bolt with the installation store (which the port takes its tokens from)."""
    config = oauth_config(fake, tmp_path)
    env = {**ENV, "SLACK_SIGNING_SECRET": fake.signing_secret}
    port = runner.make_port(config.slack, env)
    app = await build_app(config, {"slack": port}, keys=MemoryKeyStore(), clock=FixedClock())
    try:
        bolt = runner.make_bolt_app(app, config.slack, env)
        async with (
            serve_aiohttp_app(web_app(bolt, fake.signing_secret, PATH)) as base,
            SlackClientSim(base + PATH, fake.signing_secret) as sim,
        ):
            try:
                yield Rig(fake, app, bolt, port, sim, base)
                await bolt.convene_handlers.wait_idle()  # type: ignore[attr-defined]
            finally:
                await bolt.convene_handlers.aclose()  # type: ignore[attr-defined]
    finally:
        await app.aclose()


@contextlib.contextmanager
def acting_in(fake: FakeSlackWebAPI, ws: SlackWorkspace) -> Iterator[None]:
    """Requests built while inside come from ``ws`` (its team id in every payload)."""
    before = fake.payloads
    fake.payloads = SlackPayloads(ws, issuer=fake)
    try:
        yield
    finally:
        fake.payloads = before


async def install(r: Rig, ws: SlackWorkspace, installer: str = "U0MAYA") -> aiohttp.ClientResponse:
    """A person of ``ws`` opens the install page, approves on Slack, and comes back with the code."""
    async with aiohttp.ClientSession() as browser:
        async with browser.get(r.url + "/slack/install") as page:
            assert page.status == 200
            html = await page.text()
            cookie = page.cookies["slack-app-oauth-state"].value
        state = re.search(r"state=([0-9a-f-]+)", html)
        assert state is not None
        assert state.group(1) == cookie
        code = r.fake.grant_installation(ws, TOKENS[ws.team_id], installer)
        async with browser.get(
            r.url + "/slack/oauth_redirect",
            params={"code": code, "state": state.group(1)},
            headers={"Cookie": f"slack-app-oauth-state={cookie}"},
        ) as done:
            await done.read()
            return done


def tokens_since(fake: FakeSlackWebAPI, index: int) -> set[str | None]:
    """The tokens of the Web API calls since ``index`` (a response_url takes none)."""
    return {c.token for c in fake.calls_since(index) if c.method not in ("oauth.v2.access", "response_url")}


async def start_round(r: Rig, ws: SlackWorkspace) -> None:
    with acting_in(r.fake, ws):
        resp = await r.form("maya", "start", START)
    assert resp.status == 200


async def test_two_workspaces_install_and_each_is_answered_with_its_own_token(
    fake_slack: FakeSlackWebAPI, tmp_path: Path
) -> None:
    async with oauth_rig(fake_slack, tmp_path) as r:
        for ws in (ALPHA, BETA):
            done = await install(r, ws)
            assert done.status == 200
        assert len(fake_slack.calls("oauth.v2.access")) == 2
        async with r.app.engine.connect() as conn:
            teams = set((await conn.execute(text("select team_id from slack_bots"))).scalars())
            assert teams == {ALPHA.team_id, BETA.team_id}
            assert (await conn.execute(text("select count(*) from slack_oauth_states"))).scalar() == 0

        for ws in (ALPHA, BETA):
            mark = len(fake_slack.calls())
            await start_round(r, ws)  # the installer convenes: a form, then the round card
            methods = {c.method for c in fake_slack.calls_since(mark)}
            assert {"views.open", "chat.postMessage"} <= methods
            assert tokens_since(fake_slack, mark) == {TOKENS[ws.team_id]}, "each workspace's own token"

        # Conveners named for Alpha convene in Alpha; the same user id in Beta is nobody there.
        for ws, opened in ((BETA, False), (ALPHA, True)):
            mark = len(fake_slack.calls())
            with acting_in(fake_slack, ws):
                await r.command("dan", "start", channel="C0OTHER")
            methods = {c.method for c in fake_slack.calls_since(mark)}
            assert ("views.open" in methods) is opened, (ws.team_id, methods)
            assert tokens_since(fake_slack, mark) <= {TOKENS[ws.team_id]}


async def test_a_code_that_slack_did_not_issue_or_a_forged_state_installs_nothing(
    fake_slack: FakeSlackWebAPI, tmp_path: Path
) -> None:
    async with oauth_rig(fake_slack, tmp_path) as r, aiohttp.ClientSession() as browser:
        async with browser.get(r.url + "/slack/install") as page:
            cookie = page.cookies["slack-app-oauth-state"].value
        code = fake_slack.grant_installation(ALPHA, TOKENS[ALPHA.team_id])
        forged = {"code": code, "state": "not-the-state"}
        async with browser.get(
            r.url + "/slack/oauth_redirect",
            params=forged,
            headers={"Cookie": f"slack-app-oauth-state={cookie}"},
        ) as resp:
            assert resp.status >= 400
        async with browser.get(
            r.url + "/slack/oauth_redirect",
            params={"code": "code-never-issued", "state": cookie},
            headers={"Cookie": f"slack-app-oauth-state={cookie}"},
        ) as resp:
            assert resp.status >= 400
        async with r.app.engine.connect() as conn:
            assert (await conn.execute(text("select count(*) from slack_bots"))).scalar() == 0
        # A workspace with no installation is refused by bolt: nothing runs, no Web API call; the
        # person is told through the command's response_url.
        mark = len(fake_slack.calls())
        with acting_in(fake_slack, ALPHA):
            inbound = fake_slack.payloads.slash_command(text="help", user_id="U0MAYA", user_name="maya")
            await r.send(inbound)
        assert [c.method for c in fake_slack.calls_since(mark)] == ["response_url"]


async def test_C5_a_workspace_that_removes_the_app_gets_nothing_more_and_the_other_carries_on(
    fake_slack: FakeSlackWebAPI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with oauth_rig(fake_slack, tmp_path) as r:
        for ws in (ALPHA, BETA):
            await install(r, ws)
            await start_round(r, ws)
        sessions = r.app.sessions
        async with sessions() as s:
            beta_conv = await s.scalar(
                select(ConversationRow).where(ConversationRow.workspace_id == BETA.team_id)
            )
            assert beta_conv is not None
        beta_round = beta_conv.round_id
        notice = _notice()
        async with sessions.begin() as s:  # a post on its way to Beta when the app is removed
            await post_everywhere(s, beta_round, notice)

        caplog.set_level(logging.WARNING, logger="convene")
        with acting_in(fake_slack, BETA):
            resp = await r.send(fake_slack.payloads.event_callback({"type": "app_uninstalled"}))
        assert resp.status == 200
        mark = len(fake_slack.calls())
        await r.settle()

        async with r.app.engine.connect() as conn:
            bots = set((await conn.execute(text("select team_id from slack_bots"))).scalars())
            assert bots == {ALPHA.team_id}
            installs = set((await conn.execute(text("select team_id from slack_installations"))).scalars())
            assert installs == {ALPHA.team_id}
        async with sessions() as s:
            conv = await s.get(ConversationRow, beta_conv.id)
            assert conv is not None
            assert conv.gone
            waiting = list(await s.scalars(select(OutboxRow).where(OutboxRow.workspace_id == BETA.team_id)))
            assert waiting
            assert all(row.status in ("sent", "failed") for row in waiting)
            assert any(row.last_error == "the workspace removed the app" for row in waiting)
        assert "removed the app" in caplog.text
        assert TOKENS[BETA.team_id] not in tokens_since(fake_slack, mark), "nothing more goes to Beta"

        # Later posts of Beta's round are not even written; a stale row fails once, for good, with no call.
        async with sessions.begin() as s:
            await post_everywhere(s, beta_round, notice)
        async with sessions() as s:
            pending = await s.scalar(
                select(OutboxRow).where(OutboxRow.workspace_id == BETA.team_id, OutboxRow.status == "pending")
            )
            assert pending is None
        assert isinstance(r.port, SlackChatPort)
        r.port.tokens.forget(BETA.team_id)  # type: ignore[union-attr]
        with pytest.raises(DeliveryError) as failed:
            await r.port.post(
                ConversationRef(Platform.SLACK, BETA.team_id, "C0GENERAL"), Rendered((Block("x"),))
            )
        assert failed.value.permanent
        assert TOKENS[BETA.team_id] not in tokens_since(fake_slack, mark)

        # Beta's people are refused by bolt (no installation); Alpha carries on with its own token.
        mark = len(fake_slack.calls())
        with acting_in(fake_slack, BETA):
            await r.command("maya", "status")
        assert [c.method for c in fake_slack.calls_since(mark)] == ["response_url"]
        with acting_in(fake_slack, ALPHA):
            await r.command("maya", "status")
        assert tokens_since(fake_slack, mark) == {TOKENS[ALPHA.team_id]}

        # Installing again brings the workspace's channels back.
        await install(r, BETA)
        async with sessions() as s:
            conv = await s.get(ConversationRow, beta_conv.id)
            assert conv is not None
            assert not conv.gone


def _notice() -> Any:
    from bot.messages import Message, Part
    from bot.prompts import PromptKey

    return Message((Part(PromptKey.PHASE_CHANGED, {"title": "Safer streets", "phase": "vote"}),))


def test_our_tables_are_slack_sdks_tables() -> None:
    """bot/persistence/tables.py declares slack_sdk's tables (the core imports no slack_sdk); they must
    stay what the installed slack_sdk reads and writes."""
    theirs = MetaData()
    SQLAlchemyInstallationStore.build_installations_table(theirs, "slack_installations")
    SQLAlchemyInstallationStore.build_bots_table(theirs, "slack_bots")
    SQLAlchemyOAuthStateStore.build_oauth_states_table(theirs, "slack_oauth_states")
    for name, table in theirs.tables.items():
        ours = Base.metadata.tables[name]
        assert [c.name for c in ours.columns] == [c.name for c in table.columns], name
        for col in table.columns:
            mine = ours.columns[col.name]
            assert type(mine.type) is type(col.type), (name, col.name)
            assert getattr(mine.type, "length", None) == getattr(col.type, "length", None), (name, col.name)
            assert mine.nullable == col.nullable, (name, col.name)
        assert {i.name for i in ours.indexes} == {i.name for i in table.indexes}, name


def test_oauth_needs_http_mode_and_conveners_of_a_named_workspace() -> None:
    with pytest.raises(ValueError, match="mode: http"):
        SlackConfig(oauth=SlackOAuth(enabled=True))
    with pytest.raises(ValueError, match="team_id"):
        SlackConfig(
            mode="http", oauth=SlackOAuth(enabled=True), conveners=SlackConveners(user_ids=["U0MAYA"])
        )
    SlackConfig(
        mode="http",
        oauth=SlackOAuth(enabled=True),
        conveners=SlackConveners(team_id="T0A", user_ids=["U0MAYA"]),
    )
    assert "commands" in manifest_scopes()
    assert "chat:write" in manifest_scopes()


def test_oauth_without_its_client_secret_names_the_variable() -> None:
    config = SlackConfig(enabled=True, mode="http", oauth=SlackOAuth(enabled=True))
    with pytest.raises(ConfigError, match="SLACK_CLIENT_SECRET"):
        runner.make_port(config, {"SLACK_CLIENT_ID": "1.2"})
