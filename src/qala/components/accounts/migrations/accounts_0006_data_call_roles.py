"""the data call's roles: submitter, reviewer, publisher

Revision ID: accounts_0006_data_call_roles
Revises: accounts_0005
Create Date: 2026-12-06 03:45:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "accounts_0006_data_call_roles"
down_revision = "accounts_0005"
branch_labels = None
depends_on = None

BEFORE = "role in ('citizen','operator','analyst','administrator')"
AFTER = (
    "role in ('citizen','operator','analyst','administrator','submitter','reviewer','publisher')"
)


def _replace(condition: str) -> None:
    with op.batch_alter_table("accounts_user", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_accounts_user_role_known"), type_="check")
        batch_op.create_check_constraint("role_known", condition)


def upgrade() -> None:
    _replace(AFTER)


def downgrade() -> None:
    op.execute(
        "UPDATE accounts_user SET role = 'analyst', active = false "
        "WHERE role IN ('submitter','reviewer','publisher')"
    )
    _replace(BEFORE)
