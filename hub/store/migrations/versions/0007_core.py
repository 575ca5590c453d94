"""batches.file_written_at: an exported 837P's file is known written, or written again after a crash

Revision ID: 0007_core
Revises: 0006
Create Date: 2026-12-07 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0007_core'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('file_written_at', sa.DateTime(timezone=True), nullable=True))
    # Batches exported before this revision were written (the command returned).
    op.execute("update batches set file_written_at = created_at where path is not null")
    # An unknown provider address was stored as JSON null, which an upsert's COALESCE took for a
    # value: a sole proprietor's rendering role erased their billing address. SQL NULL from now on.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("update providers set address = null where address::text = 'null'")
    else:
        op.execute("update providers set address = null where address = 'null'")


def downgrade() -> None:
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.drop_column('file_written_at')
