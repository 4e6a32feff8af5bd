"""a rating run names the published release it read

Revision ID: rating_0002_run_release
Revises: rating_0001
Create Date: 2026-12-06 04:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "rating_0002_run_release"
down_revision = "rating_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rating_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("release", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rating_run", schema=None) as batch_op:
        batch_op.drop_column("release")
