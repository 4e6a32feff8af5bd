"""each city's area (centre, radius, boundary) for refusing reports outside it

Revision ID: requests311_0004_cities_area
Revises: requests311_0003
Create Date: 2026-12-06 01:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "requests311_0004_cities_area"
down_revision = "requests311_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests311_jurisdiction", schema=None) as batch_op:
        batch_op.add_column(sa.Column("area", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("requests311_jurisdiction", schema=None) as batch_op:
        batch_op.drop_column("area")
