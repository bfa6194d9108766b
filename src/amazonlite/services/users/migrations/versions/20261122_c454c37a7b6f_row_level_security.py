"""row-level security: each tenant table shows and accepts only the transaction's tenant (PostgreSQL)

Revision ID: c454c37a7b6f
Revises: f3ba891c1bcf
Create Date: 2026-11-22 05:30:00
"""
from collections.abc import Sequence

from amazonlite.platform.migrations import disable_row_level_security, enable_row_level_security

revision: str = 'c454c37a7b6f'
down_revision: str | None = 'f3ba891c1bcf'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = ('profiles', 'outbox', 'inbox', 'dead_letters')


def upgrade() -> None:
    enable_row_level_security(*TENANT_TABLES)


def downgrade() -> None:
    disable_row_level_security(*TENANT_TABLES)
