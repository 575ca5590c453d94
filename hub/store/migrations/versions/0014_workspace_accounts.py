"""The workspace's users and sessions; the audit trail hash-chained, with source and outcome

Revision ID: 0014_workspace_accounts
Revises: 0013_batch_mailbox
Create Date: 2026-12-08 01:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0014_workspace_accounts'
down_revision = '0013_batch_mailbox'
branch_labels = None
depends_on = None

GENESIS = "0" * 64
PAGE = 5000


def upgrade() -> None:
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=100), nullable=False, server_default='cli'))
        batch_op.add_column(sa.Column('outcome', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('prev_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('hash', sa.String(length=64), nullable=True))
    _chain_existing_rows()
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_audit_events_prev_hash'), ['prev_hash'])

    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('totp_secret', sa.String(length=64), nullable=True),
    sa.Column('totp_last_step', sa.Integer(), nullable=True),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('disabled', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('name', name=op.f('uq_users_name'))
    )
    op.create_table('web_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('mfa_done', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_web_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_web_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_web_sessions_token_hash'))
    )
    op.create_index(op.f('ix_web_sessions_user_id'), 'web_sessions', ['user_id'], unique=False)


def _chain_existing_rows() -> None:
    """The rows written before the chain existed join it, in id order, page by page (the
    migration runs in one transaction, under the store's migration lock)."""
    from bhhub.audit.chain import row_hash

    bind = op.get_bind()
    table = sa.table('audit_events', *(sa.column(name) for name in (
        'id', 'actor', 'action', 'object_type', 'detail', 'source', 'outcome', 'prev_hash', 'hash')),
        sa.column('object_ids', sa.JSON()), sa.column('at', sa.DateTime(timezone=True)))
    prev, last = GENESIS, 0
    while True:
        rows = bind.execute(sa.select(table).where(table.c.id > last).order_by(table.c.id).limit(PAGE)).mappings().all()
        if not rows:
            return
        for row in rows:
            chained = {**row, "source": row["source"] or "cli", "prev_hash": prev}
            prev = row_hash(chained)
            bind.execute(sa.update(table).where(table.c.id == row["id"]).values(prev_hash=chained["prev_hash"], hash=prev))
        last = rows[-1]["id"]


def downgrade() -> None:
    op.drop_table('web_sessions')
    op.drop_table('users')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_audit_events_prev_hash'), type_='unique')
        batch_op.drop_column('hash')
        batch_op.drop_column('prev_hash')
        batch_op.drop_column('outcome')
        batch_op.drop_column('source')
