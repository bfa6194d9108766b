"""row-level security: each tenant table shows and accepts only the transaction's tenant (PostgreSQL)

Revision ID: 6053b58c0c20
Revises: 9e018fd01a9d
Create Date: 2026-11-22 05:30:00
"""
from collections.abc import Sequence

from amazonlite.platform.migrations import disable_row_level_security, enable_row_level_security

revision: str = '6053b58c0c20'
down_revision: str | None = '9e018fd01a9d'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = ('users', 'refresh_token_families', 'refresh_tokens', 'revoked_access_tokens', 'outbox', 'inbox', 'dead_letters')


def upgrade() -> None:
    enable_row_level_security(*TENANT_TABLES)


def downgrade() -> None:
    disable_row_level_security(*TENANT_TABLES)
