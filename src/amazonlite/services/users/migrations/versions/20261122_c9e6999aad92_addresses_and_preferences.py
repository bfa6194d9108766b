"""addresses (PII columns hold encrypted tokens only) and notification preferences; row-level security on both

Revision ID: c9e6999aad92
Revises: c454c37a7b6f
Create Date: 2026-11-22 05:38:45.458836
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import amazonlite.platform.db
from amazonlite.platform.migrations import disable_row_level_security, enable_row_level_security

revision: str = 'c9e6999aad92'
down_revision: str | None = 'c454c37a7b6f'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = ('addresses', 'preferences')


def upgrade() -> None:
    op.create_table('addresses',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('name_encrypted', sa.String(length=1140), nullable=False),
    sa.Column('line1_encrypted', sa.String(length=1140), nullable=False),
    sa.Column('line2_encrypted', sa.String(length=1140), nullable=True),
    sa.Column('city', sa.String(length=100), nullable=False),
    sa.Column('state', sa.String(length=100), nullable=True),
    sa.Column('postal_code', sa.String(length=20), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('phone_encrypted', sa.String(length=103), nullable=True),
    sa.Column('is_default', sa.Boolean(), nullable=True),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', amazonlite.platform.db.UTC(), nullable=False),
    sa.Column('updated_at', amazonlite.platform.db.UTC(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_addresses')),
    sa.UniqueConstraint('tenant_id', 'user_id', 'is_default', name=op.f('uq_addresses_tenant_id_user_id_is_default'))
    )
    with op.batch_alter_table('addresses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_addresses_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index('ix_addresses_user', ['tenant_id', 'user_id', 'id'], unique=False)

    op.create_table('preferences',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('notifications', sa.JSON(), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', amazonlite.platform.db.UTC(), nullable=False),
    sa.Column('updated_at', amazonlite.platform.db.UTC(), nullable=False),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_preferences'))
    )
    with op.batch_alter_table('preferences', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_preferences_tenant_id'), ['tenant_id'], unique=False)

    enable_row_level_security(*TENANT_TABLES)


def downgrade() -> None:
    disable_row_level_security(*TENANT_TABLES)
    with op.batch_alter_table('preferences', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_preferences_tenant_id'))

    op.drop_table('preferences')
    with op.batch_alter_table('addresses', schema=None) as batch_op:
        batch_op.drop_index('ix_addresses_user')
        batch_op.drop_index(batch_op.f('ix_addresses_tenant_id'))

    op.drop_table('addresses')
