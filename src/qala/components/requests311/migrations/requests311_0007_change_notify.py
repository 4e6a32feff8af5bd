"""PostgreSQL tells listeners which request rows changed (the public answers' cache)

Every UPDATE or DELETE of a ``requests311_request`` row sends ``NOTIFY requests311_changed`` with
the row's id, delivered when the transaction commits; each server process drops its cached
public answers of that request (``answer_cache.py``). SQLite has no notifications and no cache.

Revision ID: requests311_0007_change_notify
Revises: requests311_0006_supporters
Create Date: 2026-12-06 07:15:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "requests311_0007_change_notify"
down_revision = "requests311_0006_supporters"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION requests311_notify_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('requests311_changed', OLD.id::text);
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER requests311_request_changed AFTER UPDATE OR DELETE ON requests311_request"
        " FOR EACH ROW EXECUTE FUNCTION requests311_notify_change()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS requests311_request_changed ON requests311_request")
    op.execute("DROP FUNCTION IF EXISTS requests311_notify_change()")
