"""a submitter's answer to a returned value

Revision ID: catalog_0005_call_answers
Revises: catalog_0004_release_guard
Create Date: 2026-12-06 03:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "catalog_0005_call_answers"
down_revision = "catalog_0004_release_guard"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("call_value", schema=None) as batch_op:
        batch_op.add_column(sa.Column("answer", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("call_value", schema=None) as batch_op:
        batch_op.drop_column("answer")
