"""moderation without unmasking: author marks, per-round blocks, the moderation log

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "author_marks",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("round_id", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=32), nullable=False),
        sa.Column("mark", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["round_id"], ["rounds.id"], name=op.f("fk_author_marks_round_id_rounds"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_author_marks")),
    )
    with op.batch_alter_table("author_marks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_author_marks_round_id"), ["round_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_author_marks_subject"), ["subject"], unique=False)

    op.create_table(
        "round_blocks",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("round_id", sa.String(length=32), nullable=False),
        sa.Column("mark", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["round_id"], ["rounds.id"], name=op.f("fk_round_blocks_round_id_rounds"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_round_blocks")),
        sa.UniqueConstraint("round_id", "mark", name=op.f("uq_round_blocks_round_id_mark")),
    )

    op.create_table(
        "moderation_log",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("round_id", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("text_hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["round_id"], ["rounds.id"], name=op.f("fk_moderation_log_round_id_rounds"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moderation_log")),
    )
    with op.batch_alter_table("moderation_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_moderation_log_round_id"), ["round_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("moderation_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_moderation_log_round_id"))
    op.drop_table("moderation_log")
    op.drop_table("round_blocks")
    with op.batch_alter_table("author_marks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_author_marks_subject"))
        batch_op.drop_index(batch_op.f("ix_author_marks_round_id"))
    op.drop_table("author_marks")
