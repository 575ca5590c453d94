"""eligibility and claim status checks; batches carry 270/276 inquiries; authorizations.issued_at

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 11:45:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('eligibility_checks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('trace_number', sa.String(length=50), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=True),
    sa.Column('payer_id', sa.String(length=80), nullable=False),
    sa.Column('member_id', sa.String(length=80), nullable=False),
    sa.Column('service_date', sa.Date(), nullable=False),
    sa.Column('service_types', sa.JSON(), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=True),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=True),
    sa.Column('response', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('batch_id', sa.Integer(), nullable=True),
    sa.Column('inbox_item_id', sa.Integer(), nullable=True),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.id'], name=op.f('fk_eligibility_checks_batch_id_batches')),
    sa.ForeignKeyConstraint(['inbox_item_id'], ['inbox_items.id'], name=op.f('fk_eligibility_checks_inbox_item_id_inbox_items')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_eligibility_checks_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_eligibility_checks')),
    sa.UniqueConstraint('trace_number', name=op.f('uq_eligibility_checks_trace_number'))
    )
    with op.batch_alter_table('eligibility_checks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_eligibility_checks_answered_at'), ['answered_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_eligibility_checks_member_id'), ['member_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_eligibility_checks_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_eligibility_checks_payer_id'), ['payer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_eligibility_checks_state'), ['state'], unique=False)

    op.create_table('claim_status_checks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('trace_number', sa.String(length=50), nullable=False),
    sa.Column('claim_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=30), nullable=True),
    sa.Column('response', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('batch_id', sa.Integer(), nullable=True),
    sa.Column('inbox_item_id', sa.Integer(), nullable=True),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.id'], name=op.f('fk_claim_status_checks_batch_id_batches')),
    sa.ForeignKeyConstraint(['claim_id'], ['claims.id'], name=op.f('fk_claim_status_checks_claim_id_claims')),
    sa.ForeignKeyConstraint(['inbox_item_id'], ['inbox_items.id'], name=op.f('fk_claim_status_checks_inbox_item_id_inbox_items')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_claim_status_checks')),
    sa.UniqueConstraint('trace_number', name=op.f('uq_claim_status_checks_trace_number'))
    )
    with op.batch_alter_table('claim_status_checks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_claim_status_checks_claim_id'), ['claim_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_claim_status_checks_state'), ['state'], unique=False)

    with op.batch_alter_table('authorizations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('issued_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=10), server_default='837P', nullable=False))
        batch_op.create_index(batch_op.f('ix_batches_kind'), ['kind'], unique=False)

    # A grant from a feed kept its issue date in created_at before this column existed.
    op.execute("UPDATE authorizations SET issued_at = created_at WHERE source <> 'typed'")


def downgrade() -> None:
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_batches_kind'))
        batch_op.drop_column('kind')

    with op.batch_alter_table('authorizations', schema=None) as batch_op:
        batch_op.drop_column('issued_at')

    with op.batch_alter_table('claim_status_checks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_claim_status_checks_state'))
        batch_op.drop_index(batch_op.f('ix_claim_status_checks_claim_id'))

    op.drop_table('claim_status_checks')
    with op.batch_alter_table('eligibility_checks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_eligibility_checks_state'))
        batch_op.drop_index(batch_op.f('ix_eligibility_checks_payer_id'))
        batch_op.drop_index(batch_op.f('ix_eligibility_checks_patient_id'))
        batch_op.drop_index(batch_op.f('ix_eligibility_checks_member_id'))
        batch_op.drop_index(batch_op.f('ix_eligibility_checks_answered_at'))

    op.drop_table('eligibility_checks')
