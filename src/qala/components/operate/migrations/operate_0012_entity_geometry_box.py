"""each entity's geometry box, for geo-queries to pre-filter by

Revision ID: operate_0012_entity_geometry_box
Revises: operate_0011_notification_outbox
Create Date: 2026-12-06 14:00:00

``lat_min`` … ``lon_max`` on ``operate_entity`` hold the box around every vertex of the entity's
``location`` (a point's box is the point). Geo-queries pre-filtered on ``lat``/``lon`` (a shape's
vertex mean), which missed a road passing 100 m from a ``near`` point when its vertex mean lay
kilometres away; they now pre-filter by box (ngsi.box_of). The boxes of stored entities are
computed here, with the same rule written out again so that this revision does not change with
the application code.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "operate_0012_entity_geometry_box"
down_revision = "operate_0011_notification_outbox"
branch_labels = None
depends_on = None

BOUNDS = ("lat_min", "lat_max", "lon_min", "lon_max")


def upgrade() -> None:
    with op.batch_alter_table("operate_entity", schema=None) as batch_op:
        for name in BOUNDS:
            batch_op.add_column(sa.Column(name, sa.Float(), nullable=True))
        batch_op.create_index("ix_operate_entity_box", list(BOUNDS), unique=False)
    entity = sa.table(
        "operate_entity",
        sa.column("id", sa.String()),
        sa.column("attrs", sa.JSON()),
        *(sa.column(name, sa.Float()) for name in BOUNDS),
    )
    bind = op.get_bind()
    boxes = []
    for entity_id, attrs in bind.execute(sa.select(entity.c.id, entity.c.attrs)):
        box = _box_of(attrs)
        if box is not None:
            boxes.append({"key": entity_id, **dict(zip(BOUNDS, box, strict=True))})
    if boxes:
        bind.execute(
            entity.update()
            .where(entity.c.id == sa.bindparam("key"))
            .values({name: sa.bindparam(name) for name in BOUNDS}),
            boxes,
        )


def downgrade() -> None:
    with op.batch_alter_table("operate_entity", schema=None) as batch_op:
        batch_op.drop_index("ix_operate_entity_box")
        for name in reversed(BOUNDS):
            batch_op.drop_column(name)


def _box_of(attrs: Any) -> tuple[float, float, float, float] | None:
    """(lat_min, lat_max, lon_min, lon_max) around the vertices of ``location`` (its instance
    without ``datasetId``, else the first)."""
    if not isinstance(attrs, dict):
        return None
    location = attrs.get("location")
    if isinstance(location, list):
        plain = [i for i in location if isinstance(i, dict) and i.get("datasetId") is None]
        location = plain[0] if plain else (location[0] if location else None)
    if not isinstance(location, dict) or not isinstance(location.get("value"), dict):
        return None
    points = list(_positions(location["value"].get("coordinates")))
    if not points:
        return None
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    return min(lats), max(lats), min(lons), max(lons)


def _positions(coordinates: Any) -> Iterator[tuple[float, float]]:
    if (
        isinstance(coordinates, list)
        and len(coordinates) >= 2
        and all(isinstance(c, int | float) for c in coordinates[:2])
    ):
        yield float(coordinates[0]), float(coordinates[1])
    elif isinstance(coordinates, list):
        for item in coordinates:
            yield from _positions(item)
