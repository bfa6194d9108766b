"""oauth sign-in requests and linked identities (both tenant scoped, row-level security on PostgreSQL)

Revision ID: 61c8c19e74dd
Revises: c19a8282ac5d
Create Date: 2026-11-22 06:16:10.910069
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
import amazonlite.platform.db
from amazonlite.platform.migrations import disable_row_level_security, enable_row_level_security

revision: str = '61c8c19e74dd'
down_revision: str | None = 'c19a8282ac5d'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('oauth_requests',
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('state_hash', sa.String(length=64), nullable=False),
    sa.Column('nonce', sa.String(length=128), nullable=False),
    sa.Column('code_verifier', sa.String(length=128), nullable=False),
    sa.Column('created_at', amazonlite.platform.db.UTC(), nullable=False),
    sa.Column('expires_at', amazonlite.platform.db.UTC(), nullable=False),
    sa.Column('used_at', amazonlite.platform.db.UTC(), nullable=True),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_requests')),
    sa.UniqueConstraint('tenant_id', 'state_hash', name=op.f('uq_oauth_requests_tenant_id_state_hash'))
    )
    with op.batch_alter_table('oauth_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oauth_requests_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_oauth_requests_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('oauth_identities',
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', amazonlite.platform.db.UTC(), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_oauth_identities_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_identities')),
    sa.UniqueConstraint('tenant_id', 'provider', 'subject', name=op.f('uq_oauth_identities_tenant_id_provider_subject'))
    )
    with op.batch_alter_table('oauth_identities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oauth_identities_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_oauth_identities_user_id'), ['user_id'], unique=False)

    enable_row_level_security('oauth_requests', 'oauth_identities')


def downgrade() -> None:
    disable_row_level_security('oauth_requests', 'oauth_identities')
    with op.batch_alter_table('oauth_identities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oauth_identities_user_id'))
        batch_op.drop_index(batch_op.f('ix_oauth_identities_tenant_id'))

    op.drop_table('oauth_identities')
    with op.batch_alter_table('oauth_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oauth_requests_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_oauth_requests_expires_at'))

    op.drop_table('oauth_requests')
