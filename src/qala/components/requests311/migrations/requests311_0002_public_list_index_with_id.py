"""public lists ordered from indexes ending in (requested_at, id)

Revision ID: requests311_0002
Revises: requests311_0001
Create Date: 2026-12-05 06:46:10.092054
"""

from __future__ import annotations

from alembic import op

revision = "requests311_0002"
down_revision = "requests311_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests311_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_requests311_request_jurisdiction_requested"))
        batch_op.create_index(
            "ix_requests311_request_jurisdiction_requested_id",
            ["jurisdiction_id", "requested_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_requests311_request_service_requested_id",
            ["jurisdiction_id", "service_id", "requested_at", "id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("requests311_request", schema=None) as batch_op:
        batch_op.drop_index("ix_requests311_request_service_requested_id")
        batch_op.drop_index("ix_requests311_request_jurisdiction_requested_id")
        batch_op.create_index(
            batch_op.f("ix_requests311_request_jurisdiction_requested"),
            ["jurisdiction_id", "requested_at"],
            unique=False,
        )
