"""room on each page for in-place updates of the rows ingestion rewrites with every reading

Revision ID: operate_0010_hot_records
Revises: operate_0009_periodic_due
Create Date: 2026-12-06 10:40:00

With one reading per message every reading rewrites its stream's detector record and adds to
its sensor's hourly and daily roll-up rows (and, once a minute, the sensor's last seen). On full
pages PostgreSQL writes each new row version to another page and adds an entry to every index
of the table: 2–15 % of these updates were HOT (heap-only) in bench/operate_batch_profile.py.
A fill factor of 50 leaves room on each page, so nearly every update stays on its page without
index entries (and the old versions are pruned by the next update there): 100 % of the
detector-record updates and 99 % of the roll-up updates were HOT. PostgreSQL only; it applies
to pages written from now on (``VACUUM FULL`` of these tables, in a quiet hour, applies it to
the rows already there).
"""

from __future__ import annotations

from alembic import op

revision = "operate_0010_hot_records"
down_revision = "operate_0009_periodic_due"
branch_labels = None
depends_on = None

TABLES = (
    "operate_detector_record",
    "operate_observation_hourly",
    "operate_observation_daily",
    "operate_sensor",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no fill factor
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
