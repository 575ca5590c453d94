"""alerts.notified_at, notify_attempts, notifications: alerts delivered to people from the store

Revision ID: 0012_alert_notifications
Revises: 0008_claim_payment_identity
Create Date: 2026-12-07 14:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0012_alert_notifications'
down_revision = '0008_claim_payment_identity'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notified_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('notify_attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('notifications', sa.JSON(), nullable=True))
        batch_op.create_index('ix_alerts_notified_at', ['notified_at'])
    # Alerts raised before notifiers existed are history, not a backlog to mail out at upgrade.
    op.execute("update alerts set notified_at = raised_at")


def downgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_notified_at')
        batch_op.drop_column('notifications')
        batch_op.drop_column('notify_attempts')
        batch_op.drop_column('notified_at')
