"""temporal instances: the history of attributes of every kind, with instanceIds

Revision ID: operate_0008_temporal_instances
Revises: operate_0007_csources
Create Date: 2026-12-06 07:05:00

``operate_attribute_instance`` holds each attribute instance the NGSI-LD temporal API writes
(text, relationships, language maps, geometries as well as numbers), with its ``instanceId``,
``datasetId`` and observation/creation/modification/deletion times, so that one instance can be
modified or deleted. Numeric sensor readings stay in the partitioned ``operate_observation`` only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "operate_0008_temporal_instances"
down_revision = "operate_0007_csources"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operate_attribute_instance",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("instance_id", sa.String(length=128), nullable=False),
        sa.Column("entity_id", sa.String(length=256), nullable=False),
        sa.Column("attr", sa.String(length=512), nullable=False),
        sa.Column("dataset_id", sa.String(length=512), nullable=True),
        sa.Column("observed_us", sa.BigInteger(), nullable=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("modified_us", sa.BigInteger(), nullable=False),
        sa.Column("deleted_us", sa.BigInteger(), nullable=True),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operate_attribute_instance")),
        sa.UniqueConstraint("instance_id", name=op.f("uq_operate_attribute_instance_instance_id")),
    )
    op.create_index(
        "ix_operate_attribute_instance_entity",
        "operate_attribute_instance",
        ["entity_id", "attr", "observed_us"],
    )


def downgrade() -> None:
    op.drop_index("ix_operate_attribute_instance_entity", table_name="operate_attribute_instance")
    op.drop_table("operate_attribute_instance")
