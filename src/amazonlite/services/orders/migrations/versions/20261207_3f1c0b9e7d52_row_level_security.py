"""row-level security: each tenant table shows and accepts only the transaction's tenant (PostgreSQL)

Revision ID: 3f1c0b9e7d52
Revises: 8ca91f9490fb
Create Date: 2026-12-07 16:10:00
"""
from collections.abc import Sequence

from amazonlite.platform.migrations import disable_row_level_security, enable_row_level_security

revision: str = '3f1c0b9e7d52'
down_revision: str | None = '8ca91f9490fb'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = ('orders', 'order_steps', 'idempotency_keys', 'outbox', 'inbox', 'dead_letters')


def upgrade() -> None:
    enable_row_level_security(*TENANT_TABLES)


def downgrade() -> None:
    disable_row_level_security(*TENANT_TABLES)
