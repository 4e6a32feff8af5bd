"""residents' photos of requests (re-encoded files in the photo store, hidden with a reason)

Revision ID: requests311_0005_photos
Revises: requests311_0004_cities_area
Create Date: 2026-12-06 04:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "requests311_0005_photos"
down_revision = "requests311_0004_cities_area"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "requests311_photo",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("thumb_name", sa.String(length=48), nullable=False),
        sa.Column("content_type", sa.String(length=20), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("hidden_reason", sa.Text(), nullable=True),
        sa.Column("hidden_by", sa.String(length=120), nullable=True),
        sa.Column("hidden_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests311_request.id"],
            name=op.f("fk_requests311_photo_request_id_requests311_request"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_requests311_photo")),
        sa.UniqueConstraint("name", name=op.f("uq_requests311_photo_name")),
        sa.UniqueConstraint(
            "request_id", "position", name=op.f("uq_requests311_photo_request_id_position")
        ),
    )
    with op.batch_alter_table("requests311_photo", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_requests311_photo_request_id"), ["request_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("requests311_photo", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_requests311_photo_request_id"))
    op.drop_table("requests311_photo")
