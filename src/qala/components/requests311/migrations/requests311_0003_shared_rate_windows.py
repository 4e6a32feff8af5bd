"""rate windows shared by server processes

Revision ID: requests311_0003
Revises: requests311_0002
Create Date: 2026-12-05 07:08:46.959032
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "requests311_0003"
down_revision = "requests311_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "requests311_rate_window",
        sa.Column("client_key", sa.String(length=80), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("previous", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("client_key", name=op.f("pk_requests311_rate_window")),
    )


def downgrade() -> None:
    op.drop_table("requests311_rate_window")
