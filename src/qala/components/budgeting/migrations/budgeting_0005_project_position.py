"""a tracked project's position (millionths of a degree) for the map

Revision ID: budgeting_0005
Revises: budgeting_0004
Create Date: 2026-12-06 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "budgeting_0005"
down_revision = "budgeting_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("budgeting_project", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lat_e6", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("lon_e6", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("budgeting_project", schema=None) as batch_op:
        batch_op.drop_column("lon_e6")
        batch_op.drop_column("lat_e6")
