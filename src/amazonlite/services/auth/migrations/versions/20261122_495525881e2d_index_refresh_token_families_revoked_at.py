"""index refresh_token_families.revoked_at

At start, auth reloads the families revoked within the last access-token lifetime into the
revocation store (their access tokens carry the family as `sid`); the index serves that read.

Revision ID: 495525881e2d
Revises: 61c8c19e74dd
Create Date: 2026-11-22 07:52:05.518935
"""
from collections.abc import Sequence

from alembic import op

revision: str = '495525881e2d'
down_revision: str | None = '61c8c19e74dd'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('refresh_token_families', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refresh_token_families_revoked_at'), ['revoked_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('refresh_token_families', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refresh_token_families_revoked_at'))
