"""what a posted 835 means: crossovers on claim payments, who owes a PR denial, advance notices

Revision ID: 0009_remit_outcomes
Revises: 0011_ack_precedence
Create Date: 2026-12-09 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0009_remit_outcomes'
down_revision = '0011_ack_precedence'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('remit_claims', schema=None) as batch_op:
        batch_op.add_column(sa.Column('crossed_over', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('crossover_payer', sa.String(length=80), server_default='', nullable=False))
    with op.batch_alter_table('denials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('patient_owes', sa.Boolean(), server_default=sa.false(), nullable=False))
    # Denials posted before this revision: a PR amount was taken as the patient's, as it was shown.
    op.execute("update denials set patient_owes = true where group_code = 'PR'")
    op.create_table('advance_notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_control_number', sa.String(length=38), nullable=False),
    sa.Column('procedure_code', sa.String(length=10), nullable=True),
    sa.Column('signed_on', sa.Date(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('recorded_by', sa.String(length=80), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_advance_notices'))
    )
    with op.batch_alter_table('advance_notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_advance_notices_patient_control_number'), ['patient_control_number'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('advance_notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_advance_notices_patient_control_number'))
    op.drop_table('advance_notices')
    with op.batch_alter_table('denials', schema=None) as batch_op:
        batch_op.drop_column('patient_owes')
    with op.batch_alter_table('remit_claims', schema=None) as batch_op:
        batch_op.drop_column('crossover_payer')
        batch_op.drop_column('crossed_over')
