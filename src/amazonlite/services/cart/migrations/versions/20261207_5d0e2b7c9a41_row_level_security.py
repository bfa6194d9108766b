"""row-level security: each tenant table shows and accepts only the transaction's tenant (PostgreSQL)

Revision ID: 5d0e2b7c9a41
Revises: c899ad1579d4
Create Date: 2026-12-07 13:00:00
"""
from collections.abc import Sequence

from amazonlite.platform.migrations import disable_row_level_security, enable_row_level_security

revision: str = '5d0e2b7c9a41'
down_revision: str | None = 'c899ad1579d4'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = ('carts', 'sku_prices', 'coupons', 'coupon_redemptions', 'idempotency_keys', 'outbox', 'inbox',
                 'dead_letters')


def upgrade() -> None:
    enable_row_level_security(*TENANT_TABLES)


def downgrade() -> None:
    disable_row_level_security(*TENANT_TABLES)
