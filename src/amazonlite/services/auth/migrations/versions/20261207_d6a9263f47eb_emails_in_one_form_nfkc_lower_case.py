"""emails in one form: NFKC, lower case

Emails used to be compared lower-cased only, so an address in full-width letters (or with a
ligature) signed up as a second account beside the plain one. The service now stores and compares
the NFKC form; this puts the stored emails in it, so that their owners can still sign in.

Two accounts of one tenant whose emails become the same would break the unique (tenant, email)
and leave one of them unreachable. The upgrade then stops, writes nothing, and names them: an
operator decides which account keeps the address, gives the other another email, and runs the
upgrade again. Nothing is merged or dropped behind anyone's back.

The normalisation is written out here, not imported: a migration must do tomorrow what it did today.

Revision ID: d6a9263f47eb
Revises: 495525881e2d
Create Date: 2026-12-07 10:45:00
"""
import unicodedata
import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'd6a9263f47eb'
down_revision: str | None = '495525881e2d'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

USERS = sa.table('users', sa.column('id', sa.Uuid()), sa.column('tenant_id', sa.String(64)),
                 sa.column('email', sa.String(320)))
BATCH = 1000


class EmailCollision(RuntimeError):
    pass


def normalise(email: str) -> str:
    return unicodedata.normalize('NFKC', email).strip().lower()


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        # Row-level security: this transaction sees every tenant's rows (as the owner runs it).
        bind.execute(sa.text("SELECT set_config('app.tenant_id', '*', true)"))
    # Only the rows that change are kept: ASCII emails (nearly all) are in the form already.
    changes: dict[uuid.UUID, tuple[str, str, str]] = {}
    rows = bind.execute(sa.select(USERS.c.id, USERS.c.tenant_id, USERS.c.email).execution_options(yield_per=BATCH))
    for user_id, tenant_id, email in rows:
        if (new := normalise(email)) != email:
            changes[user_id] = (tenant_id, email, new)
    if not changes:
        return
    _refuse_collisions(bind, changes)
    for user_id, (_tenant, _old, new) in changes.items():
        bind.execute(sa.update(USERS).where(USERS.c.id == user_id).values(email=new))


def _refuse_collisions(bind: sa.Connection, changes: dict[uuid.UUID, tuple[str, str, str]]) -> None:
    """Raise `EmailCollision` naming every group of accounts that would share one email."""
    holders: dict[tuple[str, str], list[tuple[uuid.UUID, str]]] = {}
    for user_id, (tenant_id, old, new) in changes.items():
        holders.setdefault((tenant_id, new), []).append((user_id, old))
    new_emails = sorted({new for _tenant, _old, new in changes.values()})
    for start in range(0, len(new_emails), BATCH):
        unchanged = bind.execute(sa.select(USERS.c.id, USERS.c.tenant_id, USERS.c.email)
                                 .where(USERS.c.email.in_(new_emails[start:start + BATCH])))
        for user_id, tenant_id, email in unchanged:
            if user_id not in changes and (tenant_id, email) in holders:
                holders[(tenant_id, email)].append((user_id, email))
    collisions = [(key, accounts) for key, accounts in sorted(holders.items()) if len(accounts) > 1]
    if collisions:
        lines = [f"  tenant {tenant!r}, {email!r}: " + ", ".join(f"{user_id} ({old!r})" for user_id, old in accounts)
                 for (tenant, email), accounts in collisions]
        raise EmailCollision(
            "auth: these accounts would share one email once emails are compared in NFKC form (full-width "
            "letters and ligatures as plain ones), so nothing was changed:\n" + "\n".join(lines) + "\n"
            "Decide which account keeps each address, give the others another email "
            "(UPDATE users SET email = ... WHERE id = ...), then migrate again.")


def downgrade() -> None:
    # The normalised emails are valid for the older code as well; the original spellings are gone.
    pass
