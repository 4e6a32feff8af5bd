"""notification outbox: entity changes and failed notifications waiting to be (re)sent

Revision ID: operate_0011_notification_outbox
Revises: operate_0010_hot_records
Create Date: 2026-12-06 11:00:00

``operate_notification_outbox`` holds each entity change a write made, staged in the write's
own transaction, until the subscriptions it concerns have been notified, and each notification
whose delivery failed until it is retried (or given up: ``due_at`` null, ``failed_at`` set).
The notifier claims rows due with one indexed range read on ``due_at``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "operate_0011_notification_outbox"
down_revision = "operate_0010_hot_records"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operate_notification_outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("entity_id", sa.String(256), nullable=True),
        sa.Column("change", sa.JSON(), nullable=True),
        sa.Column("subscription_id", sa.String(256), nullable=True),
        sa.Column("notification", sa.JSON(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_operate_notification_outbox_due", "operate_notification_outbox", ["due_at"])
    op.create_index(
        "ix_operate_notification_outbox_failed", "operate_notification_outbox", ["failed_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_operate_notification_outbox_failed", "operate_notification_outbox")
    op.drop_index("ix_operate_notification_outbox_due", "operate_notification_outbox")
    op.drop_table("operate_notification_outbox")
