"""A user's name is unique whatever its case ('Ann' and 'ann' read as one person in the audit trail)

Revision ID: 0015_user_names_folded
Revises: 0014_workspace_accounts
Create Date: 2026-12-08 02:10:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0015_user_names_folded'
down_revision = '0014_workspace_accounts'
branch_labels = None
depends_on = None


def upgrade() -> None:
    clashes = op.get_bind().execute(sa.text(
        "select lower(name), count(*) from users group by lower(name) having count(*) > 1")).all()
    if clashes:  # a person decides which account stays: nothing is renamed behind their back
        names = ", ".join(name for name, _ in clashes)
        raise RuntimeError(f"users whose names differ only in case: {names}; disable and rename one of each "
                           "(bhhub user), then start again")
    op.create_index("uq_users_name_folded", "users", [sa.text("lower(name)")], unique=True)


def downgrade() -> None:
    op.drop_index("uq_users_name_folded", table_name="users")
