"""product rating: the average and count its reviews give it, and as of when (product.rating.updated.v1)

Revision ID: 5d8e2a7c4b19
Revises: cc250be4f9e3
Create Date: 2026-12-07 23:15:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import amazonlite.platform.db

revision: str = '5d8e2a7c4b19'
down_revision: str | None = 'cc250be4f9e3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rating_average', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('rating_count', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('rating_as_of', amazonlite.platform.db.UTC(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_column('rating_as_of')
        batch_op.drop_column('rating_count')
        batch_op.drop_column('rating_average')
