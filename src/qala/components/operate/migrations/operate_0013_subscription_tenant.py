"""the tenant each NGSI-LD subscription was made under

Revision ID: operate_0013_subscription_tenant
Revises: operate_0012_entity_geometry_box
Create Date: 2026-12-06 14:40:00

``tenant`` on ``operate_subscription`` holds the ``NGSILD-Tenant`` (a city's place code) a
subscription was created under: it is notified only of that city's entities and listed only
under that tenant. Subscriptions stored before have none (NULL), as if made without the header:
they keep watching every city, as they did.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "operate_0013_subscription_tenant"
down_revision = "operate_0012_entity_geometry_box"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("operate_subscription", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tenant", sa.String(length=80), nullable=True))
        batch_op.create_index("ix_operate_subscription_tenant", ["tenant"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("operate_subscription", schema=None) as batch_op:
        batch_op.drop_index("ix_operate_subscription_tenant")
        batch_op.drop_column("tenant")
