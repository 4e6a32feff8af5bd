"""values submitted and published as official statistics keep that kind

A data call can be answered by the official-statistics import (BNS, World Bank) as well as by the
places: ``call_value.official`` and ``data_release_value.official`` say a value is an official
statistic as its publisher printed it (or computed from such figures only), so a rating run on a
release keeps it marked official. Existing rows are not official (the default).

Adding a column with a constant default rewrites no row on either store (SQLite's ``ALTER TABLE
ADD COLUMN``; PostgreSQL's stored default), so the release guard's UPDATE triggers
(``catalog_0004_release_guard``) do not fire and stay in place.

Revision ID: catalog_0007_official_releases
Revises: catalog_0006_updated_at_index
Create Date: 2026-12-06 07:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "catalog_0007_official_releases"
down_revision = "catalog_0006_updated_at_index"
branch_labels = None
depends_on = None

TABLES = ("call_value", "data_release_value")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(
            table,
            sa.Column("official", sa.Boolean(), nullable=False, server_default=sa.false()),
        )


def downgrade() -> None:
    # SQLite drops a column by copying the table, which the release guard's DELETE trigger would
    # refuse on data_release_value: lift the guard around it, as the downgrade of a schema does.
    bind = op.get_bind()
    for table in TABLES:
        if bind.dialect.name == "sqlite" and table == "data_release_value":
            for operation in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{operation}")
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("official")
        if bind.dialect.name == "sqlite" and table == "data_release_value":
            message = (
                "a published release cannot be changed; publish a new release with the correction"
            )
            for operation in ("update", "delete"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{operation} BEFORE {operation.upper()} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{message}: {operation} of {table} refused'); END"
                )
