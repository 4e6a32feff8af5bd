"""staff scoped to a place and departments

Revision ID: accounts_0004_staff_scope
Revises: accounts_0003
Create Date: 2026-12-06 01:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "accounts_0004_staff_scope"
down_revision = "accounts_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("place", sa.String(length=80), nullable=True))
        batch_op.alter_column(
            "department",
            existing_type=sa.String(length=80),
            type_=sa.String(length=400),
            existing_nullable=True,
        )
        batch_op.create_index(batch_op.f("ix_accounts_user_place"), ["place"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("accounts_user", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accounts_user_place"))
        batch_op.alter_column(
            "department",
            existing_type=sa.String(length=400),
            type_=sa.String(length=80),
            existing_nullable=True,
        )
        batch_op.drop_column("place")
