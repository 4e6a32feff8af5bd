"""Entities are found by their geometry's box: drop the index on their point

Geo-queries pre-filter by ``lat_min`` … ``lon_max`` (``ix_operate_entity_box``, operate_0012);
nothing looks entities up by ``lat`` and ``lon`` any more, so ``ix_operate_entity_lat_lon`` only
cost every entity written (one per citizen report) one more index entry.

Revision ID: operate_0014_entity_point_index
Revises: operate_0013_subscription_tenant
Create Date: 2026-12-06 17:20:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "operate_0014_entity_point_index"
down_revision = "operate_0013_subscription_tenant"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_operate_entity_lat_lon", table_name="operate_entity")


def downgrade() -> None:
    op.create_index("ix_operate_entity_lat_lon", "operate_entity", ["lat", "lon"], unique=False)
