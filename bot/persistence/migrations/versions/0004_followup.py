"""follow-up: tracked goals, resourced actions, reminders, check-ins, pilot reviews, Delphi

Revision ID: 0004
Revises: 0003
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('goals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_name', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('owner_ref', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('sponsor', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('data_source', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('checkin_cadence', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('current', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('pilot_decision', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('pilot_note', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('pilot_decided_on', sa.Date(), nullable=True))

    with op.batch_alter_table('actions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sponsor', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('resources', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('due_soon_sent_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('due_sent_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('escalated_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('done_on', sa.Date(), nullable=True))
    op.execute("UPDATE actions SET status = 'not_started' WHERE status = 'open'")

    with op.batch_alter_table('timers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subject', sa.String(length=32), nullable=True))
        batch_op.drop_index(batch_op.f('ix_timers_due_at'))
        batch_op.drop_index(batch_op.f('ix_timers_status'))
        batch_op.create_index('ix_timers_status_due_at', ['status', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_timers_subject'), ['subject'], unique=False)

    op.create_table('action_notes',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('action_id', sa.String(length=32), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('by_name', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['action_id'], ['actions.id'], name=op.f('fk_action_notes_action_id_actions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_action_notes')),
    sa.UniqueConstraint('action_id', 'number', name=op.f('uq_action_notes_action_id_number'))
    )
    with op.batch_alter_table('action_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_action_notes_action_id'), ['action_id'], unique=False)

    op.create_table('goal_checkins',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('goal_id', sa.String(length=32), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['goal_id'], ['goals.id'], name=op.f('fk_goal_checkins_goal_id_goals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_goal_checkins')),
    sa.UniqueConstraint('goal_id', 'number', name=op.f('uq_goal_checkins_goal_id_number'))
    )
    with op.batch_alter_table('goal_checkins', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_goal_checkins_goal_id'), ['goal_id'], unique=False)

    op.create_table('followups',
    sa.Column('round_id', sa.String(length=32), nullable=False),
    sa.Column('started_on', sa.Date(), nullable=False),
    sa.Column('progress_days', sa.Integer(), nullable=False),
    sa.Column('over', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['round_id'], ['rounds.id'], name=op.f('fk_followups_round_id_rounds'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('round_id', name=op.f('pk_followups'))
    )

    op.create_table('reminder_mutes',
    sa.Column('person', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('person', name=op.f('pk_reminder_mutes'))
    )

    op.create_table('delphi',
    sa.Column('goal_id', sa.String(length=32), nullable=False),
    sa.Column('round_id', sa.String(length=32), nullable=False),
    sa.Column('stage', sa.SmallInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('published', sa.JSON(), nullable=False),
    sa.Column('fixed_target', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['goal_id'], ['goals.id'], name=op.f('fk_delphi_goal_id_goals'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['round_id'], ['rounds.id'], name=op.f('fk_delphi_round_id_rounds'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('goal_id', name=op.f('pk_delphi'))
    )
    with op.batch_alter_table('delphi', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delphi_round_id'), ['round_id'], unique=False)

    op.create_table('delphi_estimates',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('round_id', sa.String(length=32), nullable=False),
    sa.Column('goal_id', sa.String(length=32), nullable=False),
    sa.Column('stage', sa.SmallInteger(), nullable=False),
    sa.Column('voter_key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['goal_id'], ['goals.id'], name=op.f('fk_delphi_estimates_goal_id_goals'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['round_id'], ['rounds.id'], name=op.f('fk_delphi_estimates_round_id_rounds'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delphi_estimates')),
    sa.UniqueConstraint('goal_id', 'stage', 'voter_key', name=op.f('uq_delphi_estimates_goal_id_stage_voter_key'))
    )
    with op.batch_alter_table('delphi_estimates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delphi_estimates_goal_id'), ['goal_id'], unique=False)


def downgrade() -> None:
    op.drop_table('delphi_estimates')
    op.drop_table('delphi')
    op.drop_table('reminder_mutes')
    op.drop_table('followups')
    op.drop_table('goal_checkins')
    op.drop_table('action_notes')
    with op.batch_alter_table('timers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_timers_subject'))
        batch_op.drop_index('ix_timers_status_due_at')
        batch_op.create_index(batch_op.f('ix_timers_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_timers_due_at'), ['due_at'], unique=False)
        batch_op.drop_column('subject')
    op.execute("UPDATE actions SET status = 'open' WHERE status = 'not_started'")
    with op.batch_alter_table('actions', schema=None) as batch_op:
        for name in ('done_on', 'escalated_on', 'due_sent_on', 'due_soon_sent_on', 'resources', 'sponsor'):
            batch_op.drop_column(name)
    with op.batch_alter_table('goals', schema=None) as batch_op:
        for name in (
            'pilot_decided_on', 'pilot_note', 'pilot_decision', 'current', 'checkin_cadence',
            'data_source', 'sponsor', 'owner_ref', 'owner_name',
        ):
            batch_op.drop_column(name)
