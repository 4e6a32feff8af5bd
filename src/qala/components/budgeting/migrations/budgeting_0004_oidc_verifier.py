"""processes may verify residents at an OpenID provider (verifier ``oidc``)

Revision ID: budgeting_0004
Revises: budgeting_0003
Create Date: 2026-12-06 01:45:00
"""

from __future__ import annotations

from alembic import op

revision = "budgeting_0004"
down_revision = "budgeting_0003"
branch_labels = None
depends_on = "accounts_0005"

CONSTRAINT = "ck_budgeting_process_verifier_known"


def upgrade() -> None:
    with op.batch_alter_table("budgeting_process", schema=None) as batch_op:
        batch_op.drop_constraint(op.f(CONSTRAINT), type_="check")
        batch_op.create_check_constraint(
            op.f(CONSTRAINT), "verifier in ('declared','signature','oidc')"
        )


def downgrade() -> None:
    op.execute("UPDATE budgeting_process SET verifier = 'signature' WHERE verifier = 'oidc'")
    with op.batch_alter_table("budgeting_process", schema=None) as batch_op:
        batch_op.drop_constraint(op.f(CONSTRAINT), type_="check")
        batch_op.create_check_constraint(op.f(CONSTRAINT), "verifier in ('declared','signature')")
