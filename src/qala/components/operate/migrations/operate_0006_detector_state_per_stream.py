"""detector state per stream: one row per stream and group table instead of one blob per rule set

Revision ID: operate_0006
Revises: operate_0005
Create Date: 2026-12-06 03:50:00

``operate_detector_state`` held each rule set's whole evaluator state as one JSON document behind
one row lock, so every ingest worker waited for every other. ``operate_detector_record`` holds one
row per record of that state (a ``(sensor, quantity)`` stream, or a group's hour table), so a batch
locks only the rows of its own streams. The documents are split into rows here; the downgrade
joins them again. A blob whose checkpoint was behind its newest evaluated observation (only with
the former ``checkpoint_every_s`` above 0) is split as checkpointed: the readings after the
checkpoint stay stored but are not evaluated again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "operate_0006"
down_revision = "operate_0005"
branch_labels = None
depends_on = None

_SUBJECT = {"stream": ("streams", "sensor"), "group": ("groups", "group")}


def _records_table() -> sa.Table:
    return op.create_table(
        "operate_detector_record",
        sa.Column("rule_set", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("subject", sa.String(length=256), nullable=False),
        sa.Column("quantity", sa.String(length=200), nullable=False),
        sa.Column("state", sa.JSON(), nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "rule_set", "kind", "subject", "quantity", name=op.f("pk_operate_detector_record")
        ),
    )


def _blob_table() -> sa.Table:
    return op.create_table(
        "operate_detector_state",
        sa.Column("rule_set", sa.String(length=64), nullable=False),
        sa.Column("state", sa.JSON(), nullable=True),
        sa.Column("last_observation_id", sa.BigInteger(), nullable=False),
        sa.Column("checkpoint_observation_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("rule_set", name=op.f("pk_operate_detector_state")),
    )


def upgrade() -> None:
    records = _records_table()
    blobs = sa.table("operate_detector_state", sa.column("rule_set"), sa.column("state", sa.JSON))
    bind = op.get_bind()
    stamp = datetime.now(UTC)
    for rule_set, state in bind.execute(sa.select(blobs.c.rule_set, blobs.c.state)).all():
        rows: list[dict[str, Any]] = []
        for kind, (section, subject_field) in _SUBJECT.items():
            for record in (state or {}).get(section, []):
                data = dict(record)
                subject = data.pop(subject_field)
                quantity = data.pop("quantity")
                rows.append(
                    {
                        "rule_set": rule_set,
                        "kind": kind,
                        "subject": subject,
                        "quantity": quantity,
                        "state": data,
                        "version": 1,
                        "updated_at": stamp,
                    }
                )
        for start in range(0, len(rows), 500):
            op.bulk_insert(records, rows[start : start + 500])
    op.drop_table("operate_detector_state")


def downgrade() -> None:
    blobs = _blob_table()
    records = sa.table(
        "operate_detector_record",
        *(sa.column(name) for name in ("rule_set", "kind", "subject", "quantity")),
        sa.column("state", sa.JSON),
    )
    bind = op.get_bind()
    documents: dict[str, dict[str, Any]] = {}
    query = sa.select(
        records.c.rule_set, records.c.kind, records.c.subject, records.c.quantity, records.c.state
    ).order_by(records.c.rule_set, records.c.kind, records.c.subject, records.c.quantity)
    for rule_set, kind, subject, quantity, state in bind.execute(query):
        document = documents.setdefault(rule_set, {"version": 1, "streams": [], "groups": []})
        if state is None:
            continue
        section, subject_field = _SUBJECT[kind]
        document[section].append({subject_field: subject, "quantity": quantity, **state})
    stamp = datetime.now(UTC)
    op.bulk_insert(
        blobs,
        [
            {
                "rule_set": rule_set,
                "state": document,
                "last_observation_id": 0,
                "checkpoint_observation_id": 0,
                "updated_at": stamp,
            }
            for rule_set, document in documents.items()
        ],
    )
    op.drop_table("operate_detector_record")
