"""residents supporting open requests (duplicate hints): support rows, a count on each request,
and the index the nearby search reads

Revision ID: requests311_0006_supporters
Revises: requests311_0005_photos
Create Date: 2026-12-06 03:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "requests311_0006_supporters"
down_revision = "requests311_0005_photos"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "requests311_support",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("supporter_key", sa.String(length=80), nullable=False),
        sa.Column("token_key", sa.String(length=80), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("account_id", sa.String(length=200), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests311_request.id"],
            name=op.f("fk_requests311_support_request_id_requests311_request"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_requests311_support")),
        sa.UniqueConstraint(
            "request_id",
            "supporter_key",
            name=op.f("uq_requests311_support_request_id_supporter_key"),
        ),
    )
    op.create_index(
        op.f("ix_requests311_support_request_id"), "requests311_support", ["request_id"]
    )
    with op.batch_alter_table("requests311_request", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("supporters", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.create_index(
            "ix_requests311_request_service_lat_lon", ["service_id", "lat", "lon"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("requests311_request", schema=None) as batch_op:
        batch_op.drop_index("ix_requests311_request_service_lat_lon")
        batch_op.drop_column("supporters")
    op.drop_index(op.f("ix_requests311_support_request_id"), table_name="requests311_support")
    op.drop_table("requests311_support")
