"""periodic subscriptions: when each timeInterval subscription is due next

Revision ID: operate_0009_periodic_due
Revises: operate_0008_temporal_instances
Create Date: 2026-12-06 10:20:00

``operate_subscription.periodic_due_at`` is set for subscriptions with a ``timeInterval`` (none
for the others), so that the scheduler finds those due with one indexed range read, and a
restarted process carries on where the last one stopped.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "operate_0009_periodic_due"
down_revision = "operate_0008_temporal_instances"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("operate_subscription", schema=None) as batch_op:
        batch_op.add_column(sa.Column("periodic_due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_operate_subscription_periodic_due", ["periodic_due_at"])


def downgrade() -> None:
    with op.batch_alter_table("operate_subscription", schema=None) as batch_op:
        batch_op.drop_index("ix_operate_subscription_periodic_due")
        batch_op.drop_column("periodic_due_at")
