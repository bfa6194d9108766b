"""profile emails in one form: NFKC, lower case

Auth now stores and announces emails in NFKC form (full-width letters and ligatures as the plain
ones); the profiles copied from its events before then get the same form. A profile's email is not
unique, so no two rows can collide here (auth's own migration refuses accounts that would).

The normalisation is written out here, not imported: a migration must do tomorrow what it did today.

Revision ID: 94be0d0dd5d4
Revises: c9e6999aad92
Create Date: 2026-12-07 11:00:00
"""
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '94be0d0dd5d4'
down_revision: str | None = 'c9e6999aad92'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROFILES = sa.table('profiles', sa.column('id', sa.Uuid()), sa.column('email', sa.String(320)))


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        # Row-level security: this transaction sees every tenant's rows (as the owner runs it).
        bind.execute(sa.text("SELECT set_config('app.tenant_id', '*', true)"))
    rows = bind.execute(sa.select(PROFILES.c.id, PROFILES.c.email).execution_options(yield_per=1000))
    # Only the rows that change are kept: ASCII emails (nearly all) are in the form already.
    changes = {profile_id: new for profile_id, email in rows
               if (new := unicodedata.normalize('NFKC', email).strip().lower()) != email}
    for profile_id, email in changes.items():
        bind.execute(sa.update(PROFILES).where(PROFILES.c.id == profile_id).values(email=email))


def downgrade() -> None:
    # The normalised emails are valid for the older code as well; the original spellings are gone.
    pass
