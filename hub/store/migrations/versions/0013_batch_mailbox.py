"""batches.mailbox: the mailbox an inquiry file (270, 276) was written for, by the routing table

Revision ID: 0013_batch_mailbox
Revises: 0012_alert_notifications
Create Date: 2026-12-07 14:30:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0013_batch_mailbox'
down_revision = '0012_alert_notifications'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for files written before: they keep going to the mailbox whose ISA ids they carry.
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mailbox', sa.String(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.drop_column('mailbox')
