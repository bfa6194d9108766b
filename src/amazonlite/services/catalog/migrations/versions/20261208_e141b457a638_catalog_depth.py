"""catalog depth: attribute definitions and breadcrumbs on categories, compare-at prices, a filter
row per attribute value, and the rating average as a sortable column (0 until a review)

Revision ID: e141b457a638
Revises: 5d8e2a7c4b19
Create Date: 2026-12-08 00:45:00
"""
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from amazonlite.platform.ids import new_id
from amazonlite.platform.migrations import disable_row_level_security, enable_row_level_security, see_every_tenant
from amazonlite.services.catalog.attributes import filter_rows

revision: str = 'e141b457a638'
down_revision: str | None = '5d8e2a7c4b19'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    see_every_tenant()
    with op.batch_alter_table('categories', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attributes', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('path', sa.JSON(), nullable=True))
    _backfill_categories()
    with op.batch_alter_table('categories', schema=None) as batch_op:
        batch_op.alter_column('attributes', existing_type=sa.JSON(), nullable=False)
        batch_op.alter_column('path', existing_type=sa.JSON(), nullable=False)

    with op.batch_alter_table('variants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('compare_at_amount', sa.BigInteger(), nullable=True))

    op.execute("UPDATE products SET rating_average = 0 WHERE rating_average IS NULL")
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.alter_column('rating_average', existing_type=sa.Float(), nullable=False, server_default='0')
        batch_op.create_index('ix_products_rating', ['tenant_id', 'status', 'rating_average', 'id'], unique=False)

    op.create_table(
        'product_attribute_values',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('product_id', sa.Uuid(), nullable=False),
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('value', sa.String(length=120), nullable=False),
        sa.Column('tenant_id', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['product_id'], ['products.id'],
                                name=op.f('fk_product_attribute_values_product_id_products'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_product_attribute_values')),
    )
    with op.batch_alter_table('product_attribute_values', schema=None) as batch_op:
        batch_op.create_index('ix_product_attribute_values_lookup', ['tenant_id', 'key', 'value', 'product_id'],
                              unique=False)
        batch_op.create_index('ix_product_attribute_values_product', ['product_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_product_attribute_values_tenant_id'), ['tenant_id'], unique=False)
    enable_row_level_security('product_attribute_values')
    _backfill_attribute_values()


def _backfill_categories() -> None:
    """No definitions yet; each category's breadcrumbs from the tree as it stands."""
    categories = sa.table('categories', sa.column('id', sa.Uuid()), sa.column('name', sa.String()),
                          sa.column('slug', sa.String()), sa.column('parent_id', sa.Uuid()),
                          sa.column('attributes', sa.JSON()), sa.column('path', sa.JSON()))
    bind = op.get_bind()
    rows = {row.id: row for row in bind.execute(sa.select(categories.c.id, categories.c.name, categories.c.slug,
                                                                categories.c.parent_id))}

    def path(category_id: uuid.UUID) -> list[dict[str, str]]:
        crumbs: list[dict[str, str]] = []
        node: uuid.UUID | None = category_id
        while node is not None and node in rows and len(crumbs) <= len(rows):
            row = rows[node]
            crumbs.insert(0, {"id": str(row.id), "name": row.name, "slug": row.slug})
            node = row.parent_id
        return crumbs

    for category_id in rows:
        bind.execute(categories.update().where(categories.c.id == category_id)
                     .values(attributes=[], path=path(category_id)))


def _backfill_attribute_values() -> None:
    products = sa.table('products', sa.column('id', sa.Uuid()), sa.column('tenant_id', sa.String()),
                        sa.column('attributes', sa.JSON()))
    values = sa.table('product_attribute_values', sa.column('id', sa.Uuid()), sa.column('product_id', sa.Uuid()),
                      sa.column('key', sa.String()),
                      sa.column('value', sa.String()), sa.column('tenant_id', sa.String()))
    bind = op.get_bind()
    batch: list[dict[str, Any]] = []
    for row in bind.execute(sa.select(products.c.id, products.c.tenant_id, products.c.attributes)):
        batch += [{"id": new_id(), "product_id": row.id, "key": key, "value": value, "tenant_id": row.tenant_id}
                  for key, value in sorted(filter_rows(row.attributes or {}))]
        if len(batch) >= 1000:
            bind.execute(values.insert(), batch)
            batch = []
    if batch:
        bind.execute(values.insert(), batch)


def downgrade() -> None:
    disable_row_level_security('product_attribute_values')
    with op.batch_alter_table('product_attribute_values', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_product_attribute_values_tenant_id'))
        batch_op.drop_index('ix_product_attribute_values_product')
        batch_op.drop_index('ix_product_attribute_values_lookup')
    op.drop_table('product_attribute_values')
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_index('ix_products_rating')
        batch_op.alter_column('rating_average', existing_type=sa.Float(), nullable=True, server_default=None)
    op.execute("UPDATE products SET rating_average = NULL WHERE rating_count = 0")
    with op.batch_alter_table('variants', schema=None) as batch_op:
        batch_op.drop_column('compare_at_amount')
    with op.batch_alter_table('categories', schema=None) as batch_op:
        batch_op.drop_column('path')
        batch_op.drop_column('attributes')
