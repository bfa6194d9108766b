"""row-level security: each tenant table shows and accepts only the transaction's tenant (PostgreSQL)

Revision ID: cc250be4f9e3
Revises: 84fabdfae066
Create Date: 2026-11-22 05:30:00
"""
from collections.abc import Sequence

from amazonlite.platform.migrations import disable_row_level_security, enable_row_level_security

revision: str = 'cc250be4f9e3'
down_revision: str | None = '84fabdfae066'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = ('categories', 'brands', 'products', 'variants', 'outbox', 'inbox', 'dead_letters')


def upgrade() -> None:
    enable_row_level_security(*TENANT_TABLES)


def downgrade() -> None:
    disable_row_level_security(*TENANT_TABLES)
