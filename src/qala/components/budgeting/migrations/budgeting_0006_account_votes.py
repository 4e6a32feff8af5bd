"""an account's "I have voted" (and when) per process, for the page a resident returns to

Revision ID: budgeting_0006
Revises: budgeting_0005
Create Date: 2026-12-06 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "budgeting_0006"
down_revision = "budgeting_0005"
branch_labels = None
depends_on = "accounts_0005"


def upgrade() -> None:
    op.create_table(
        "budgeting_account_vote",
        sa.Column("process_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("voted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts_user.id"],
            name=op.f("fk_budgeting_account_vote_account_id_accounts_user"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["process_id"],
            ["budgeting_process.id"],
            name=op.f("fk_budgeting_account_vote_process_id_budgeting_process"),
        ),
        sa.PrimaryKeyConstraint("process_id", "account_id", name=op.f("pk_budgeting_account_vote")),
    )
    with op.batch_alter_table("budgeting_account_vote", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_budgeting_account_vote_account_id"), ["account_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("budgeting_account_vote", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_budgeting_account_vote_account_id"))
    op.drop_table("budgeting_account_vote")
