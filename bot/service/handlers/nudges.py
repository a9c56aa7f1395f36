"""Nudges without naming (threat A14): ``/convene nudge`` reminds, privately and identically,
everyone who joined and has not voted on every released idea.

Who that is is derived as the deck derives a person's place (``bot/domain/deck.py``): each joined
person's pseudonym under the round key, and the ballots stored under it. Nothing is written that
links the roster to a ballot; the reminders are direct messages through the outbox, deleted once
delivered like every private row. The convener is told only how many were reminded, and only when
that is at least k (the round's ``sector_min_voters``); otherwise "fewer than k". Nobody is named,
in public or to the conveners.

Rules (who is behind, what count may be shown) live in ``bot/domain/nudges.py``.
"""

from __future__ import annotations

from sqlalchemy import func, select

from bot.domain import commands as c
from bot.domain import nudges as rules
from bot.domain.phases import Phase
from bot.domain.rules import Who
from bot.messages import Message, Part
from bot.persistence.tables import BallotRow, IdeaRow, ParticipantRow
from bot.prompts import PromptKey
from bot.refs import Platform, UserRef
from bot.service import queries
from bot.service.outbox import direct_row
from bot.service.registry import Capability, Text
from bot.service.unit import Unit

cap = Capability("nudges")


@cap.command(
    c.Nudge,
    phases=(Phase.VOTE,),
    who=Who.CONVENER,
    text=Text("nudge", build=lambda ctx, _rest: c.Nudge(ctx)),
)
async def nudge(u: Unit, cmd: c.Nudge) -> None:
    rnd = u.round
    released = int(
        await u.s.scalar(
            select(func.max(IdeaRow.number)).where(IdeaRow.round_id == rnd.id, IdeaRow.status == "released")
        )
        or 0
    )
    # Ideas voted on, per pseudonym (released ideas are numbered 1..n; a rating alone is no vote).
    voted = {
        str(key): int(n)
        for key, n in await u.s.execute(
            select(BallotRow.voter_key, func.count())
            .where(
                BallotRow.round_id == rnd.id,
                BallotRow.choice.is_not(None),
                BallotRow.idea_number.between(1, released),
            )
            .group_by(BallotRow.voter_key)
        )
    }
    people: dict[str, UserRef] = {}
    for platform, workspace, user_id in await u.s.execute(
        select(ParticipantRow.platform, ParticipantRow.workspace_id, ParticipantRow.user_id).where(
            ParticipantRow.round_id == rnd.id
        )
    ):
        ref = UserRef(Platform(platform), workspace, user_id)
        people[u.pseudonym(ref)] = ref
    behind = rules.unfinished(people, voted, released)
    deadline = queries.fmt_time(await queries.deadline(u.s, rnd))
    message = Message((Part(PromptKey.NUDGE, {"round": rnd.title, "deadline": deadline}),))
    for pseudonym in behind:
        u.s.add(direct_row(people[pseudonym].key(), message, rnd.id))
    k = max(1, int(rnd.settings.get("sector_min_voters", 5)))
    u.reply(PromptKey.NUDGED, {"count": rules.shown_count(len(behind), k), "k": k})
