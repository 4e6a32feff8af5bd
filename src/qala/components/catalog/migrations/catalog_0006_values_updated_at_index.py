"""an index on indicator_value.updated_at, read by data_version() on every cached page

Revision ID: catalog_0006_updated_at_index
Revises: catalog_0005_call_answers
Create Date: 2026-12-06 07:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "catalog_0006_updated_at_index"
down_revision = "catalog_0005_call_answers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_indicator_value_updated_at", "indicator_value", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_indicator_value_updated_at", table_name="indicator_value")
