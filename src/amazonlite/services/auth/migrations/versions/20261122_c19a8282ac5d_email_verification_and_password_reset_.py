"""email verification and password reset tokens; users.email_verified

`email_tokens` is tenant scoped (row-level security on PostgreSQL). Accounts that exist already
start unverified: nothing has proven their addresses.

Revision ID: c19a8282ac5d
Revises: 6053b58c0c20
Create Date: 2026-11-22 06:04:26.402226
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
import amazonlite.platform.db
from amazonlite.platform.migrations import disable_row_level_security, enable_row_level_security

revision: str = 'c19a8282ac5d'
down_revision: str | None = '6053b58c0c20'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('email_tokens',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', amazonlite.platform.db.UTC(), nullable=False),
    sa.Column('expires_at', amazonlite.platform.db.UTC(), nullable=False),
    sa.Column('used_at', amazonlite.platform.db.UTC(), nullable=True),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_email_tokens_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_email_tokens')),
    sa.UniqueConstraint('tenant_id', 'token_hash', name=op.f('uq_email_tokens_tenant_id_token_hash'))
    )
    with op.batch_alter_table('email_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_email_tokens_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_email_tokens_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_email_tokens_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_verified', sa.Boolean(), server_default=sa.false(), nullable=False))

    enable_row_level_security('email_tokens')



def downgrade() -> None:
    disable_row_level_security('email_tokens')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('email_verified')

    with op.batch_alter_table('email_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_email_tokens_user_id'))
        batch_op.drop_index(batch_op.f('ix_email_tokens_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_email_tokens_expires_at'))

    op.drop_table('email_tokens')
