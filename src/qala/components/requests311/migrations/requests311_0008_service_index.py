"""A request's service is indexed once: drop the single-column index the duplicate hints' index
already covers

``ix_requests311_request_service_lat_lon`` (service, latitude, longitude) begins with the
service, so it serves every lookup by service alone (the foreign key's checks included); the
single-column ``ix_requests311_request_service_id`` only cost every report one more index entry.

Revision ID: requests311_0008_service_index
Revises: requests311_0007_change_notify
Create Date: 2026-12-06 17:10:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "requests311_0008_service_index"
down_revision = "requests311_0007_change_notify"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_requests311_request_service_id", table_name="requests311_request")


def downgrade() -> None:
    op.create_index(
        "ix_requests311_request_service_id", "requests311_request", ["service_id"], unique=False
    )
