"""the database refuses any change to a published release

Every row of ``data_release`` and ``data_release_value`` is published (a release is written once,
at publication, in the same transaction as its values). Besides the ORM's ``before_flush`` hook,
triggers now refuse UPDATE and DELETE of those rows on the database itself, so raw SQL, another
client or a hand-run script cannot change a release either. A correction is a new release.

Revision ID: catalog_0004_release_guard
Revises: catalog_0003_official_calls
Create Date: 2026-12-06 03:40:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "catalog_0004_release_guard"
down_revision = "catalog_0003_official_calls"
branch_labels = None
depends_on = None

MESSAGE = "a published release cannot be changed; publish a new release with the correction"
TABLES = ("data_release", "data_release_value")
OPERATIONS = ("update", "delete")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION qala_release_is_immutable() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '%: % of % refused', '{MESSAGE}', lower(TG_OP), TG_TABLE_NAME
                    USING ERRCODE = 'integrity_constraint_violation';
            END;
            $$
            """
        )
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION qala_release_is_immutable()"
            )
        return
    for table in TABLES:
        for operation in OPERATIONS:
            op.execute(
                f"CREATE TRIGGER {table}_no_{operation} BEFORE {operation.upper()} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}: {operation} of {table} refused'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_immutable ON {table}")
        op.execute("DROP FUNCTION IF EXISTS qala_release_is_immutable()")
        return
    for table in TABLES:
        for operation in OPERATIONS:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{operation}")
