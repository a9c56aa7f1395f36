"""A tenant can never read or act on another tenant's round (Hypothesis over ids).

One deployment serves many organisations: Slack workspaces and Discord guilds. Tenant B here is the
harness's city (a Slack workspace and a Discord guild) with two rounds: one closed and followed up
(goals, owned actions, reminders), one open for voting. A person of another tenant (any workspace or
guild id, any channel id: B's own channel ids too, any user id: on Slack B's people's ids too, and named a
convener by their own tenant's config or not) types commands, presses every button B's people were
shown (deck votes, goals, actions, follow-up) with the ids as shown or with the round swapped, and
submits every form of B's rounds. Each time they get a private refusal and nothing is stored."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from adapters.console.driver import CHANNELS
from bot.domain.commands import Audience, Context
from bot.forms import Form
from bot.messages import Card
from bot.persistence.db import make_engine
from bot.persistence.tables import Base, OutboxRow, RoundRow
from bot.refs import ConversationRef, Platform, UserRef
from bot.service.textcmd import run_text
from tests.core import followup_story, story
from tests.harness import Harness, make_harness

# Every table a round's state lives in (the outbox and the inbox are checked apart).
STATE = (
    "rounds",
    "round_conversations",
    "participants",
    "ideas",
    "ballots",
    "goals",
    "actions",
    "action_notes",
    "goal_checkins",
    "delphi",
    "delphi_estimates",
    "followups",
    "reminder_mutes",
    "timers",
    "message_slots",
)
TEXTS = [
    "link {code}",
    "join",
    "contribute",
    "next",
    "close",
    "cancel",
    "status",
    "mine",
    "goal",
    "goal 1",
    "action 1",
    "actions all",
    "editaction 1",
    "editgoal 1",
    "update 1",
    "delphi 1",
    "timezone Europe/Paris",
]
_ID = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789-", min_size=1, max_size=12)


@dataclass
class TenantB:
    h: Harness
    loop: asyncio.AbstractEventLoop
    round_ids: list[str]
    codes: list[str]
    buttons: list[str]
    forms: list[str]
    users: list[str]
    channels: list[str]


async def _setup() -> Harness:
    engine = make_engine("sqlite+aiosqlite://")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    h = await make_harness(engine)
    await followup_story.closed_round(h)
    await followup_story.days(h, 31)  # reminders and check-in requests, with their buttons, in DMs
    # A second round, open for voting, in the same channels; everyone opens their deck.
    maya = h.person("maya")
    form = await h.driver.command(maya, "start")
    assert form is not None
    await h.driver.submit(maya, form, {"title": "Quieter nights", "purpose": "Agree on noise"})
    async with h.app.sessions() as s:
        code = await s.scalar(select(RoundRow.join_code).where(RoundRow.title == "Quieter nights"))
    await h.driver.command(h.person("ade", "discord"), f"link {code}")
    await story.join_all(h)
    await story.contribute_all(h)
    await h.driver.command(maya, "next")
    for name, _p, _s in story.PEOPLE:
        await h.driver.open_deck(h.driver.people[name])
    await h.driver.settle()
    return h


def _forms(h: Harness, round_ids: list[str], numbers: list[str]) -> list[str]:
    names = sorted({r.form.name for r in h.app.core.registry.routes if r.form is not None})
    out = []
    for rid, name in itertools.product(round_ids, names):
        out.append(f"cv:{rid}:form:{name}")
        out.extend(f"cv:{rid}:form:{name}:{n}" for n in numbers)
    return out


async def _fingerprint(h: Harness) -> dict[str, list[Any]]:
    async with h.app.engine.connect() as conn:
        return {t: sorted(map(repr, (await conn.execute(text(f"select * from {t}"))).all())) for t in STATE}


async def _last_seq(h: Harness) -> int:
    async with h.app.engine.connect() as conn:
        return int((await conn.execute(text("select coalesce(max(seq), 0) from outbox"))).scalar() or 0)


def _swapped(action_id: str, round_ids: list[str]) -> Iterator[str]:
    yield action_id
    for a, b in itertools.permutations(round_ids, 2):
        if a in action_id:
            yield action_id.replace(a, b)


def tenant_b() -> TenantB:
    loop = asyncio.new_event_loop()
    h = loop.run_until_complete(_setup())

    async def read() -> tuple[list[str], list[str]]:
        async with h.app.sessions() as s:
            rounds = list((await s.execute(select(RoundRow.id, RoundRow.join_code))).all())
        return [r for r, _ in rounds], [c for _, c in rounds if c]

    round_ids, codes = loop.run_until_complete(read())
    shown = sorted({b.action_id for port in h.ports.values() for item in port.shown for b in item.buttons})
    buttons = sorted({s for b in shown for s in _swapped(b, round_ids)})
    numbers = sorted({part for b in shown for part in b.split(":")[3:] if part.isdigit() or len(part) == 32})
    users = sorted({f"U-{name}" for name, _p, _s in story.PEOPLE})
    channels = sorted({c.channel_id for c in CHANNELS.values()})
    return TenantB(h, loop, round_ids, codes, buttons, _forms(h, round_ids, numbers), users, channels)


def _attacker(draw: Any, b: TenantB) -> Context:
    platform = draw(st.sampled_from([Platform.SLACK, Platform.DISCORD]))
    theirs = CHANNELS[platform.value].workspace_id
    workspace = draw(_ID.filter(lambda w: w != theirs))
    own = _ID.map(lambda u: "U-" + u).filter(lambda u: u not in b.users)
    # A Slack user id belongs to its workspace, so B's people's ids from another workspace are other
    # people; a Discord user id is one person in every guild (B's Discord people themselves), so a
    # Discord attacker has an id of their own.
    user = draw(st.one_of(st.sampled_from(b.users), own) if platform is Platform.SLACK else own)
    channel = draw(st.one_of(st.sampled_from([*b.channels, f"DM-{user[2:]}"]), _ID))
    return Context(
        actor=UserRef(platform, workspace, user, "Mallory"),
        where=ConversationRef(platform, workspace, channel),
        request_id=f"attack:{draw(st.uuids())}",
        is_convener=draw(st.booleans()),  # their own tenant's config may name them
        audience=Audience.OWN,
    )


def test_C5_a_person_of_another_tenant_is_refused_privately_and_nothing_is_stored() -> None:
    b = tenant_b()
    assert len(b.round_ids) == 2
    assert b.buttons
    assert b.forms
    try:
        refused_cards = 0

        @st.composite
        def attack(draw: Any) -> tuple[Context, str, Any]:
            ctx = _attacker(draw, b)
            kind = draw(st.sampled_from(["text", "press", "submit"]))
            if kind == "text":
                line = draw(st.sampled_from(TEXTS)).format(code=draw(st.sampled_from(b.codes)))
                return ctx, kind, line
            if kind == "press":
                return ctx, kind, draw(st.sampled_from(b.buttons))
            values = {
                "text": "Take over their round",
                "sector": "resident",
                "value": "99",
                "status": "done",
                "note": "n",
                "decision": "stop",
                "title": "Ours now",
                "goal": "1",
                "due": "2027-01-01",
                "owner": "Mallory",
                "estimate": "5",
                "target": "5",
            }
            return ctx, kind, (draw(st.sampled_from(b.forms)), values)

        @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(attack())
        def check(case: tuple[Context, str, Any]) -> None:
            nonlocal refused_cards
            ctx, kind, what = case
            core = b.h.app.core

            async def run() -> None:
                nonlocal refused_cards
                before, seq = await _fingerprint(b.h), await _last_seq(b.h)
                answer: Form | Card | None = None
                if kind == "text":
                    answer = await run_text(core, ctx, what)
                elif kind == "press":
                    answer = await core.press(ctx, what)
                else:
                    form_id, values = what
                    await core.submit_form(ctx, form_id, values)
                assert not isinstance(answer, Form), (kind, what, "a form of another tenant's round opened")
                if isinstance(answer, Card):
                    prompts = [p.prompt for p in answer.message.parts]
                    assert all(p.startswith("errors/") for p in prompts), (kind, what, prompts)
                    refused_cards += 1
                assert await _fingerprint(b.h) == before, (kind, what, "something was stored")
                async with b.h.app.sessions() as s:
                    rows = list(await s.scalars(select(OutboxRow).where(OutboxRow.seq > seq)))
                for row in rows:
                    assert row.visibility != "public", (kind, what, "a post was written")
                    assert (row.recipient_id, row.workspace_id) == (ctx.actor.user_id, ctx.where.workspace_id)
                    prompts = [p["prompt"] for p in row.body["parts"]]
                    assert all(p.startswith("errors/") for p in prompts), (kind, what, prompts)
                assert rows or isinstance(answer, Card), (kind, what, "no refusal was given")

            b.loop.run_until_complete(run())

        check()
    finally:
        b.loop.run_until_complete(b.h.close())
        b.loop.run_until_complete(b.h.app.engine.dispose())
        b.loop.close()
