"""an index of payments by status and age: the sandbox gateway's redeliveries find the waiting ones

Revision ID: 3c5e9a1f7b20
Revises: 7d41e2a9c3b8
Create Date: 2026-12-07 18:30:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '3c5e9a1f7b20'
down_revision: str | None = '7d41e2a9c3b8'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_payments_waiting', 'payments', ['status', 'updated_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_payments_waiting', table_name='payments')
