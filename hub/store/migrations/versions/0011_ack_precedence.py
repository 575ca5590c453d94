"""acknowledgments.outcome, source, effective_on: a claim's status decided by precedence over its answers

Revision ID: 0011_ack_precedence
Revises: 0007_core
Create Date: 2026-12-09 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0011_ack_precedence'
down_revision = '0007_core'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('acknowledgments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outcome', sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column('source', sa.String(length=15), nullable=True))
        batch_op.add_column(sa.Column('effective_on', sa.Date(), nullable=True))
    # Answers stored before this revision: what their code meant (domain reference 7.2, 7.3), from
    # the clearinghouse (who the sender was is not known), on the day they arrived.
    op.execute("""
        update acknowledgments set source = 'clearinghouse', outcome = case
            when kind = '277CA' and code in ('A0', 'A1') then 'received'
            when kind = '277CA' and code in ('A2', 'A5') then 'accepted'
            when kind = '277CA' and code = 'A4' then 'not_found'
            when kind = '277CA' and code in ('A3', 'A6', 'A7', 'A8') then 'rejected'
            when kind = '277CA' then null
            when accepted then 'received'
            else 'rejected' end
    """)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("update acknowledgments set effective_on = (at at time zone 'UTC')::date")
    else:
        op.execute("update acknowledgments set effective_on = date(at)")


def downgrade() -> None:
    with op.batch_alter_table('acknowledgments', schema=None) as batch_op:
        batch_op.drop_column('effective_on')
        batch_op.drop_column('source')
        batch_op.drop_column('outcome')
