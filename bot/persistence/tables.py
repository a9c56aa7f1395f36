"""The schema. Two halves that never point at each other:

* identity: ``participants`` (the roster: who joined, and their declared sector);
* content: ``ideas`` and ``ballots`` (what was said and voted).

Content rows have random ids, no timestamps and no column that names or points at a participant.
Where the core must recognise an author again it stores an HMAC under a per-round key that lives
outside the database (see bot.keys); after close that key is gone.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every dialect (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}  # noqa: RUF012 - SQLAlchemy reads it


class RoundRow(Base):
    __tablename__ = "rounds"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(Text)
    template: Mapped[str] = mapped_column(String(50))
    language: Mapped[str] = mapped_column(String(10))
    phase: Mapped[str] = mapped_column(String(20), index=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    join_code: Mapped[str | None] = mapped_column(String(16), unique=True)
    # Conveners act in public on purpose; their refs are kept so the bot can check them.
    conveners: Mapped[list[Any]] = mapped_column(JSON)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    key_destroyed: Mapped[bool] = mapped_column(Boolean, default=False)
    # When the round entered its current phase (for a closed round: when it closed). Retention
    # counts from it; phase changes are public events, so this says nothing about anyone. Nullable
    # only so that SQLite could add it without rebuilding `rounds`; always set.
    phase_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=_utcnow)
    # The roster and the conveners' references are gone (retention ran for this round).
    roster_purged: Mapped[bool] = mapped_column(Boolean, default=False)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's declaration form


class ConversationRow(Base):
    """A channel linked to a round. One round, many conversations, on any platform."""

    __tablename__ = "round_conversations"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    round_id: Mapped[str] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(16))
    workspace_id: Mapped[str] = mapped_column(String(64))
    channel_id: Mapped[str] = mapped_column(String(64))
    # The workspace removed the app (Slack: app_uninstalled, tokens_revoked): nothing more is posted
    # here and no stall is reported for it, until the workspace installs the app again.
    gone: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    __table_args__ = (
        UniqueConstraint("round_id", "platform", "workspace_id", "channel_id"),
        Index("ix_round_conversations_where", "platform", "workspace_id", "channel_id"),
    )


class TimerRow(Base):
    """A phase deadline, a follow-up reminder, the daily retention pass: a row, so a restart loses
    none and fires none twice. ``round_id`` is None for work that is not one round's (retention);
    ``subject`` is what a reminder is about (an action's or a goal's id)."""

    __tablename__ = "timers"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    round_id: Mapped[str | None] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    phase: Mapped[str] = mapped_column(String(20))
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done | cancelled
    subject: Mapped[str | None] = mapped_column(String(32), index=True)
    # The scheduler's claim reads the pending timers in due order, however many rows are done: a
    # partial index (``WHERE status = 'pending'``, see _pending_only) holds only those, so marking
    # one done removes its entry and inserts none.
    __table_args__ = (Index("ix_timers_pending_due_at", "due_at"),)


@event.listens_for(TimerRow.__table__, "before_create")
def _pending_only(table: Table, connection: Any, **_kw: Any) -> None:
    """Makes ix_timers_pending_due_at partial, with the keyword of the dialect creating the table
    (``sqlite_where``, ``postgresql_where``): naming both in the model would load PostgreSQL's
    dialect into every SQLite worker. Migration 0008 creates the same index."""
    index = next(i for i in table.indexes if i.name == "ix_timers_pending_due_at")
    index.dialect_kwargs[f"{connection.dialect.name}_where"] = text("status = 'pending'")


class ParticipantRow(Base):
    """Identity half: who joined. No link to ideas or ballots."""

    __tablename__ = "participants"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    round_id: Mapped[str] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(16))
    workspace_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    sector: Mapped[str | None] = mapped_column(String(64))
    __table_args__ = (UniqueConstraint("round_id", "platform", "workspace_id", "user_id"),)


class IdeaRow(Base):
    """Content half: a contribution. ``author_key`` is an HMAC under the round key, cleared at release."""

    __tablename__ = "ideas"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    round_id: Mapped[str] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), index=True)
    author_key: Mapped[str | None] = mapped_column(String(64), index=True)
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # review | pending | released | removed
    number: Mapped[int | None] = mapped_column(Integer)  # "Idea 7", drawn at release
    agree: Mapped[int | None] = mapped_column(Integer)
    disagree: Mapped[int | None] = mapped_column(Integer)
    passes: Mapped[int | None] = mapped_column(Integer)
    score: Mapped[float | None] = mapped_column(Float)
    rank: Mapped[int | None] = mapped_column(Integer)
    common_ground: Mapped[bool | None] = mapped_column(Boolean)
    urgency: Mapped[float | None] = mapped_column(Float)
    impact: Mapped[float | None] = mapped_column(Float)
    __table_args__ = (UniqueConstraint("round_id", "number"),)


class BallotRow(Base):
    """Content half: one person's vote on one idea. ``voter_key`` is an HMAC while voting is open and a
    random per-voter label after; never a user id."""

    __tablename__ = "ballots"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    round_id: Mapped[str] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"))
    idea_number: Mapped[int] = mapped_column(Integer)
    voter_key: Mapped[str] = mapped_column(String(64))
    choice: Mapped[str | None] = mapped_column(String(8))  # agree | disagree | pass
    urgency: Mapped[int | None] = mapped_column(SmallInteger)
    impact: Mapped[int | None] = mapped_column(SmallInteger)
    __table_args__ = (
        UniqueConstraint("round_id", "idea_number", "voter_key"),
        Index("ix_ballots_round_voter", "round_id", "voter_key"),  # one voter's ballots (the deck)
    )


class GoalRow(Base):
    __tablename__ = "goals"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    round_id: Mapped[str] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    idea_number: Mapped[int | None] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(Text)
    metric: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str] = mapped_column(String(50))
    baseline: Mapped[float] = mapped_column(Float)
    target: Mapped[float] = mapped_column(Float)
    deadline: Mapped[dt.date] = mapped_column(Date)
    pilot: Mapped[bool] = mapped_column(Boolean)
    review_date: Mapped[dt.date | None] = mapped_column(Date)
    # Follow-up. Attributed on purpose: the goal's owner (the convener who set it, or the person
    # named) is asked for the metric's current value at the check-in cadence.
    owner_name: Mapped[str | None] = mapped_column(String(200))
    owner_ref: Mapped[str | None] = mapped_column(String(200))
    sponsor: Mapped[str | None] = mapped_column(String(200))
    data_source: Mapped[str | None] = mapped_column(String(200))
    checkin_cadence: Mapped[str | None] = mapped_column(String(16))
    current: Mapped[float | None] = mapped_column(Float)
    pilot_decision: Mapped[str | None] = mapped_column(String(16))  # continue | scale | stop
    pilot_note: Mapped[str | None] = mapped_column(Text)
    pilot_decided_on: Mapped[dt.date | None] = mapped_column(Date)
    __table_args__ = (UniqueConstraint("round_id", "number"),)


class ActionRow(Base):
    """Attributed on purpose: an action has a named owner, for accountability."""

    __tablename__ = "actions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    round_id: Mapped[str] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), index=True)
    goal_id: Mapped[str] = mapped_column(ForeignKey("goals.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    owner_name: Mapped[str | None] = mapped_column(String(200))
    owner_ref: Mapped[str | None] = mapped_column(String(200))
    due: Mapped[dt.date] = mapped_column(Date)
    # not_started | on_track | at_risk | blocked | done | cancelled
    status: Mapped[str] = mapped_column(String(16), default="not_started")
    sponsor: Mapped[str | None] = mapped_column(String(200))  # who provides the resources
    resources: Mapped[str | None] = mapped_column(Text)
    # Each reminder is sent once; a moved due date clears the ones still ahead.
    due_soon_sent_on: Mapped[dt.date | None] = mapped_column(Date)
    due_sent_on: Mapped[dt.date | None] = mapped_column(Date)
    escalated_on: Mapped[dt.date | None] = mapped_column(Date)
    done_on: Mapped[dt.date | None] = mapped_column(Date)
    __table_args__ = (UniqueConstraint("round_id", "number"),)


class ActionNoteRow(Base):
    """An action's progress history (attributed, like the action): one row per status change or note."""

    __tablename__ = "action_notes"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    action_id: Mapped[str] = mapped_column(ForeignKey("actions.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    day: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    by_name: Mapped[str | None] = mapped_column(String(200))
    __table_args__ = (UniqueConstraint("action_id", "number"),)


class CheckinRow(Base):
    """A goal metric's value as its owner reported it."""

    __tablename__ = "goal_checkins"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    goal_id: Mapped[str] = mapped_column(ForeignKey("goals.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    day: Mapped[dt.date] = mapped_column(Date)
    value: Mapped[float] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (UniqueConstraint("goal_id", "number"),)


class FollowUpRow(Base):
    """A closed round whose actions and goals are followed up (from ``started_on``)."""

    __tablename__ = "followups"
    round_id: Mapped[str] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), primary_key=True)
    started_on: Mapped[dt.date] = mapped_column(Date)
    progress_days: Mapped[int] = mapped_column(Integer)
    over: Mapped[bool] = mapped_column(Boolean, default=False)


class ReminderMuteRow(Base):
    """People who turned their reminders off (a person's id, see accountability.person_id)."""

    __tablename__ = "reminder_mutes"
    person: Mapped[str] = mapped_column(String(200), primary_key=True)


class DelphiRow(Base):
    """A goal's Delphi estimate of its target: stage 1, then 2, then fixed (or closed with the round).
    ``published`` holds each stage's last spread shown ({"1": {n, median, q1, q3}})."""

    __tablename__ = "delphi"
    goal_id: Mapped[str] = mapped_column(ForeignKey("goals.id", ondelete="CASCADE"), primary_key=True)
    round_id: Mapped[str] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), index=True)
    stage: Mapped[int] = mapped_column(SmallInteger)
    status: Mapped[str] = mapped_column(String(16))  # open | fixed | closed
    published: Mapped[dict[str, Any]] = mapped_column(JSON)
    fixed_target: Mapped[float | None] = mapped_column(Float)


class EstimateRow(Base):
    """Content half, like a ballot: one person's estimate of a goal's target. ``voter_key`` is an HMAC
    under the round key while the Delphi runs, and a random label after; no time, no user id."""

    __tablename__ = "delphi_estimates"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    round_id: Mapped[str] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"))
    goal_id: Mapped[str] = mapped_column(ForeignKey("goals.id", ondelete="CASCADE"), index=True)
    stage: Mapped[int] = mapped_column(SmallInteger)
    voter_key: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)
    __table_args__ = (UniqueConstraint("goal_id", "stage", "voter_key"),)


class AuthorMarkRow(Base):
    """Moderation: who wrote a released idea or a rejected one, as a mark that only the round key
    matches (``bot.domain.moderation.author_mark``; ``subject`` is the idea's or rejection's id). No
    two marks are equal, so none links to another or to a ballot. Deleted when voting ends."""

    __tablename__ = "author_marks"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    round_id: Mapped[str] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), index=True)
    subject: Mapped[str] = mapped_column(String(32), index=True)
    mark: Mapped[str] = mapped_column(String(64))


class BlockRow(Base):
    """A person blocked from contributing in one round, by a mark only the round key matches
    (``bot.domain.moderation.block_mark``). Deleted when voting ends."""

    __tablename__ = "round_blocks"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    round_id: Mapped[str] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"))
    mark: Mapped[str] = mapped_column(String(64))
    __table_args__ = (UniqueConstraint("round_id", "mark"),)


class ModerationLogRow(Base):
    """What the conveners decided: the day (no time), the decision, the reason and a hash of the
    text. Never an author, a mark or a convener."""

    __tablename__ = "moderation_log"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    round_id: Mapped[str] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), index=True)
    day: Mapped[dt.date] = mapped_column(Date)
    decision: Mapped[str] = mapped_column(String(16))  # approved | rejected | removed | blocked
    reason: Mapped[str] = mapped_column(Text, default="")
    text_hash: Mapped[str] = mapped_column(String(64), default="")


def new_nonce() -> str:
    """A random per-row key: Discord's enforced nonce (at most 25 characters with a chunk suffix). Random,
    not the seq, so a public post reveals nothing about the rows written between two posts."""
    return secrets.token_hex(10)


class OutboxRow(Base):
    """Every post, edit, private reply and DM, written in the same transaction as the change.

    ``claimed_by`` names the relay worker holding an ``in_flight`` row; ``resend`` marks a row that
    was in flight when its worker stopped (its next delivery may repeat it); ``failing_since`` is when a
    public post first failed (cleared once delivered), which `bot.service.outbox.take_stalls` reads."""

    __tablename__ = "outbox"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    round_id: Mapped[str | None] = mapped_column(String(32), index=True)
    platform: Mapped[str] = mapped_column(String(16))
    workspace_id: Mapped[str] = mapped_column(String(64))
    channel_id: Mapped[str] = mapped_column(String(64))
    visibility: Mapped[str] = mapped_column(String(16))
    recipient_id: Mapped[str | None] = mapped_column(String(64))
    reply_handle: Mapped[str | None] = mapped_column(Text)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    slot: Mapped[str | None] = mapped_column(String(200), index=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(
        String(16), index=True
    )  # pending | in_flight | sent | failed | superseded
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    message_id: Mapped[str | None] = mapped_column(String(128))
    last_error: Mapped[str | None] = mapped_column(String(200))
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    nonce: Mapped[str | None] = mapped_column(String(25), default=new_nonce)
    resend: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    failing_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    stall_noticed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # A conversation's undelivered public rows, looked up by every claim.
    __table_args__ = (Index("ix_outbox_channel", "channel_id", "status"),)


class SlotRow(Base):
    """ "Post once, then edit": the platform message that currently shows a slot."""

    __tablename__ = "message_slots"
    slot: Mapped[str] = mapped_column(String(200), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(128))


class InboxRow(Base):
    """Platform request ids already handled (Slack retries, double submits, redeliveries)."""

    __tablename__ = "inbox"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date)


# --- Slack installations (OAuth mode), in slack_sdk's own layout ------------------------------------
# The tables of slack_sdk's SQLAlchemy installation and OAuth state stores, declared here (the core
# imports no slack_sdk) so that migrations build them; tests/adapters/slack/test_slack_oauth.py checks
# that they match what the installed slack_sdk declares. They hold each workspace's bot token.


def _slack_common(prefix: str) -> list[Any]:
    return [
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("client_id", String(32), nullable=False),
        Column("app_id", String(32), nullable=False),
        Column("enterprise_id", String(32)),
        Column("enterprise_name", String(200)),
        *([Column("enterprise_url", String(200))] if prefix == "installations" else []),
        Column("team_id", String(32)),
        Column("team_name", String(200)),
        Column("bot_token", String(200)),
        Column("bot_id", String(32)),
        Column("bot_user_id", String(32)),
        Column("bot_scopes", String(1000)),
        Column("bot_refresh_token", String(200)),
        Column("bot_token_expires_at", DateTime),
    ]


slack_installations = Table(
    "slack_installations",
    Base.metadata,
    *_slack_common("installations"),
    Column("user_id", String(32), nullable=False),
    Column("user_token", String(200)),
    Column("user_scopes", String(1000)),
    Column("user_refresh_token", String(200)),
    Column("user_token_expires_at", DateTime),
    Column("incoming_webhook_url", String(200)),
    Column("incoming_webhook_channel", String(200)),
    Column("incoming_webhook_channel_id", String(200)),
    Column("incoming_webhook_configuration_url", String(200)),
    Column("is_enterprise_install", Boolean, default=False, nullable=False),
    Column("token_type", String(32)),
    Column("installed_at", DateTime, nullable=False),
    Index("slack_installations_idx", "client_id", "enterprise_id", "team_id", "user_id", "installed_at"),
)

slack_bots = Table(
    "slack_bots",
    Base.metadata,
    *_slack_common("bots"),
    Column("is_enterprise_install", Boolean, default=False, nullable=False),
    Column("installed_at", DateTime, nullable=False),
    Index("slack_bots_idx", "client_id", "enterprise_id", "team_id", "installed_at"),
)

slack_oauth_states = Table(
    "slack_oauth_states",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("state", String(200), nullable=False),
    Column("expire_at", DateTime, nullable=False),
)
