"""remit_claims.fingerprint and generation: each 835 claim payment posted once, whatever its envelope

Revision ID: 0008_claim_payment_identity
Revises: 0009_remit_outcomes
Create Date: 2026-12-08 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0008_claim_payment_identity'
down_revision = '0009_remit_outcomes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows posted before this revision keep NULLs: posting computes their identity from what they
    # hold (bhhub.remittance.repeats), and NULLs never collide in the unique constraint.
    with op.batch_alter_table('remit_claims', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fingerprint', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('generation', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_remit_claims_fingerprint'), ['fingerprint'], unique=False)
        batch_op.create_unique_constraint(batch_op.f('uq_remit_claims_claim_id'), ['claim_id', 'fingerprint', 'generation'])
    with op.batch_alter_table('remit_payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claims_repeated', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('remit_payments', schema=None) as batch_op:
        batch_op.drop_column('claims_repeated')
    with op.batch_alter_table('remit_claims', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_remit_claims_claim_id'), type_='unique')
        batch_op.drop_index(batch_op.f('ix_remit_claims_fingerprint'))
        batch_op.drop_column('generation')
        batch_op.drop_column('fingerprint')
