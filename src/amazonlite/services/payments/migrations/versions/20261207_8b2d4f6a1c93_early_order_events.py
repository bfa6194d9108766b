"""known orders keep what arrived before the order's creation: its reservation, or its cancellation

Revision ID: 8b2d4f6a1c93
Revises: 3c5e9a1f7b20
Create Date: 2026-12-07 18:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '8b2d4f6a1c93'
down_revision: str | None = '3c5e9a1f7b20'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ORDER_FIELDS = (('customer_id', sa.Uuid()), ('amount', sa.BigInteger()), ('currency', sa.String(length=3)),
                ('payment_provider', sa.String(length=32)))


def upgrade() -> None:
    with op.batch_alter_table('known_orders') as batch:
        for name, type_ in ORDER_FIELDS:
            batch.alter_column(name, existing_type=type_, nullable=True)
        batch.add_column(sa.Column('reserved_early', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('cancelled_early', sa.String(length=64), nullable=True))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":  # row-level security: see every tenant's rows
        bind.execute(sa.text("SELECT set_config('app.tenant_id', '*', true)"))
    op.execute("DELETE FROM known_orders WHERE customer_id IS NULL")  # what arrived early cannot be kept
    with op.batch_alter_table('known_orders') as batch:
        batch.drop_column('cancelled_early')
        batch.drop_column('reserved_early')
        for name, type_ in ORDER_FIELDS:
            batch.alter_column(name, existing_type=type_, nullable=False)
