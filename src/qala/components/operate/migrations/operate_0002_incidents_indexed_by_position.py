"""incidents indexed by position

Revision ID: operate_0002
Revises: operate_0001
Create Date: 2026-12-05 07:02:12.566021
"""

from __future__ import annotations

from alembic import op

revision = "operate_0002"
down_revision = "operate_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("operate_incident", schema=None) as batch_op:
        batch_op.create_index("ix_operate_incident_lat_lon", ["lat", "lon"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("operate_incident", schema=None) as batch_op:
        batch_op.drop_index("ix_operate_incident_lat_lon")
