"""row-level security: each tenant table shows and accepts only the transaction's tenant (PostgreSQL)

Revision ID: 7d41e2a9c3b8
Revises: 0fd7b1efa675
Create Date: 2026-12-07 16:40:00
"""
from collections.abc import Sequence

from amazonlite.platform.migrations import disable_row_level_security, enable_row_level_security

revision: str = '7d41e2a9c3b8'
down_revision: str | None = '0fd7b1efa675'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = ('known_orders', 'payments', 'webhook_receipts', 'refunds', 'idempotency_keys', 'outbox', 'inbox',
                 'dead_letters')


def upgrade() -> None:
    enable_row_level_security(*TENANT_TABLES)


def downgrade() -> None:
    disable_row_level_security(*TENANT_TABLES)
