"""context source registrations and their subscriptions (NGSI-LD clauses 5.2.9, 5.9–5.11)

Revision ID: operate_0007_csources
Revises: operate_0006
Create Date: 2026-12-06 07:00:00

The revision id is not ``operate_0007_csource_registrations``: Alembic keeps it in a
``varchar(32)`` column, which PostgreSQL refuses to overflow.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "operate_0007_csources"
down_revision = "operate_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operate_csource_registration",
        sa.Column("id", sa.String(length=256), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("context", sa.JSON(), nullable=True),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("tenant", sa.String(length=80), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operate_csource_registration")),
    )
    op.create_index(
        op.f("ix_operate_csource_registration_tenant"),
        "operate_csource_registration",
        ["tenant"],
    )
    op.create_table(
        "operate_csource_subscription",
        sa.Column("id", sa.String(length=256), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("tenant", sa.String(length=80), nullable=True),
        sa.Column("times_sent", sa.Integer(), nullable=False),
        sa.Column("last_notification", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_failure", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operate_csource_subscription")),
    )
    op.create_index(
        op.f("ix_operate_csource_subscription_tenant"),
        "operate_csource_subscription",
        ["tenant"],
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_operate_csource_subscription_tenant"), table_name="operate_csource_subscription"
    )
    op.drop_table("operate_csource_subscription")
    op.drop_index(
        op.f("ix_operate_csource_registration_tenant"), table_name="operate_csource_registration"
    )
    op.drop_table("operate_csource_registration")
