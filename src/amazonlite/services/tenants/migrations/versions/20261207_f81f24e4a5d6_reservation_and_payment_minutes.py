"""reservation and payment minutes per tenant

Revision ID: f81f24e4a5d6
Revises: cb2b76939874
Create Date: 2026-12-07 12:30:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'f81f24e4a5d6'
down_revision: str | None = 'cb2b76939874'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing tenants get the default, 15 minutes each.
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reservation_minutes', sa.Integer(), server_default='15', nullable=False))
        batch_op.add_column(sa.Column('payment_minutes', sa.Integer(), server_default='15', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.drop_column('payment_minutes')
        batch_op.drop_column('reservation_minutes')
