"""Bulk import (`amazonlite catalog import FILE`, `amazonlite seed --products N`): products read from
JSON Lines or CSV, checked line by line, and written a batch per transaction.

Idempotent on SKU: a product whose SKUs exist already is updated to what the line says (through the
same use case as `PATCH /products/{id}`; left alone when it already is), any other is created. New
products are written with a few multi-row inserts per batch (products, variants, attribute filter
rows and their `product.updated.v1` in the outbox), which is what lets 100,000 products load in
minutes. Categories (named by their path
from the root) and brands are made when missing. A bad line is reported with its line number and
the rest load.

File shapes (the README has examples):
- JSON Lines: one `schemas.ProductImport` per line.
- CSV: one row per variant, with the columns of `CSV_COLUMNS`; consecutive rows with the same `handle`
  are one product, whose fields come from its first row.
"""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from amazonlite.platform.db import utcnow
from amazonlite.platform.ids import new_id
from amazonlite.platform.outbox import outbox_rows
from amazonlite.platform.tenancy import insert_together
from amazonlite.services.catalog import products, taxonomy
from amazonlite.services.catalog.attributes import check, effective, filter_rows
from amazonlite.services.catalog.cache import ProductCache
from amazonlite.services.catalog.errors import CatalogConflict, InvalidAttribute
from amazonlite.services.catalog.models import Brand, Category, Product, ProductAttributeValue, Variant
from amazonlite.services.catalog.publishing import product_updated
from amazonlite.services.catalog.repository import BrandRepository, CategoryRepository, ProductRepository
from amazonlite.services.catalog.schemas import BrandCreate, CategoryCreate, ProductImport, ProductUpdate
from amazonlite.services.catalog.slugs import first_free, slugify

CSV_COLUMNS = ("handle", "name", "description", "status", "category", "brand", "attributes", "media", "sku",
               "variant_name", "options", "price", "compare_at_price", "currency")
JSON_LINES = (".jsonl", ".ndjson")


class UnsupportedFile(ValueError):
    pass


@dataclass(frozen=True)
class Line:
    """A product as read from the file, at its (first) line; or why that line could not be read."""

    number: int
    data: dict[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True)
class Item:
    number: int
    product: ProductImport


@dataclass
class Outcome:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    def add(self, other: Outcome) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.errors += other.errors


# Reading ----------------------------------------------------------------------------------------

def read_lines(path: Path) -> Iterator[Line]:
    """The products of a JSON Lines or CSV file, by the name's suffix."""
    suffix = path.suffix.lower()
    if suffix in JSON_LINES:
        return _json_lines(path)
    if suffix == ".csv":
        return _csv_products(path)
    raise UnsupportedFile(f"{path.name}: expected a .jsonl, .ndjson or .csv file")


def count_products(path: Path) -> int:
    """How many products the file holds (for a progress bar): its non-blank lines, or its handles."""
    return sum(1 for line in read_lines(path) if line.data is not None or line.error is not None)


def _json_lines(path: Path) -> Iterator[Line]:
    with path.open("rb") as file:
        for number, raw in enumerate(file, start=1):
            if not raw.strip():
                continue
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                yield Line(number, error=f"not JSON: {exc}")
                continue
            yield Line(number, data) if isinstance(data, dict) else Line(number, error="not a JSON object")


def _csv_products(path: Path) -> Iterator[Line]:
    with path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.DictReader(file)
        unknown = set(reader.fieldnames or ()) - set(CSV_COLUMNS)
        if unknown or not reader.fieldnames:
            yield Line(1, error=f"unknown columns {sorted(unknown)}; the columns are {', '.join(CSV_COLUMNS)}"
                       if unknown else "no header row")
            return
        current: tuple[str, int, dict[str, Any]] | None = None
        broken: str | None = None
        for row in reader:
            number = reader.line_num
            handle = (row.get("handle") or row.get("sku") or "").strip()
            if current is not None and handle == current[0]:
                if broken is None:
                    broken = _add_variant(current[2], row)
                continue
            if current is not None:
                yield Line(current[1], error=broken) if broken else Line(current[1], current[2])
            product, broken = _csv_product(row)
            current = (handle, number, product)
        if current is not None:
            yield Line(current[1], error=broken) if broken else Line(current[1], current[2])


def _csv_product(row: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    product: dict[str, Any] = {"variants": []}
    for name in ("name", "description", "status", "category", "brand"):
        if (row.get(name) or "").strip():
            product[name] = row[name].strip() if name != "description" else row[name]
    try:
        if (row.get("attributes") or "").strip():
            product["attributes"] = json.loads(row["attributes"])
    except json.JSONDecodeError as exc:
        return product, f"attributes: not a JSON object ({exc})"
    product["media"] = [{"url": url} for url in (row.get("media") or "").replace("|", " ").split()]
    return product, _add_variant(product, row)


def _add_variant(product: dict[str, Any], row: dict[str, Any]) -> str | None:
    """Add the row's variant to `product`; why not, when the row is wrong."""
    currency = (row.get("currency") or "").strip()
    variant: dict[str, Any] = {"sku": (row.get("sku") or "").strip(),
                               "name": (row.get("variant_name") or "").strip() or (row.get("sku") or "").strip()}
    try:
        variant["price"] = {"amount": int((row.get("price") or "").strip()), "currency": currency}
        if (row.get("compare_at_price") or "").strip():
            variant["compare_at_price"] = {"amount": int(row["compare_at_price"].strip()), "currency": currency}
    except ValueError:
        return f"sku {variant['sku']!r}: a price is an integer amount in minor units"
    options = (row.get("options") or "").strip()
    if options.startswith("{"):
        try:
            variant["options"] = json.loads(options)
        except json.JSONDecodeError as exc:
            return f"sku {variant['sku']!r}: options: not a JSON object ({exc})"
    elif options:
        pairs = [part.partition("=") for part in options.split(";") if part.strip()]
        if any(not sep for _, sep, _ in pairs):
            return f"sku {variant['sku']!r}: options are name=value pairs separated by ';'"
        variant["options"] = {name.strip(): value.strip() for name, _, value in pairs}
    product["variants"].append(variant)
    return None


def validated(line: Line) -> Item | tuple[int, str]:
    """The line as a product to import, or (its number, what is wrong with it)."""
    if line.data is None:
        return line.number, line.error or "unreadable"
    try:
        return Item(line.number, ProductImport.model_validate(line.data))
    except ValidationError as exc:
        problems = [f"{'.'.join(str(part) for part in error['loc']) or 'product'}: {error['msg']}"
                    for error in exc.errors()[:5]]
        return line.number, "; ".join(problems)


def first_claims(items: Sequence[Item], claims: dict[str, int]) -> tuple[list[Item], list[tuple[int, str]]]:
    """The items whose SKUs no earlier line of the file named (`claims`: SKU → its line, kept across
    batches), and the others as errors: a file says one thing per SKU."""
    kept: list[Item] = []
    errors: list[tuple[int, str]] = []
    for item in items:
        earlier = sorted({claims[v.sku] for v in item.product.variants if v.sku in claims})
        if earlier:
            errors.append((item.number, f"a SKU of line {earlier[0]}"))
            continue
        claims.update((v.sku, item.number) for v in item.product.variants)
        kept.append(item)
    return kept, errors


# Writing ----------------------------------------------------------------------------------------

class _Taxonomy:
    """The tenant's categories (by path) and brands (by name) as one batch finds or makes them."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.categories = CategoryRepository(session)
        self.brands = BrandRepository(session)
        self.by_parent: dict[tuple[uuid.UUID | None, str], Category] | None = None
        self.definitions: dict[uuid.UUID, list[dict[str, Any]]] = {}

    async def category(self, names: Sequence[str]) -> Category | None:
        if not names:
            return None
        if self.by_parent is None:
            rows = await self.categories.all()
            self.by_parent = {(c.parent_id, c.name.casefold()): c for c in rows}
            self.definitions = {c.id: c.attributes for c in rows}
        parent: Category | None = None
        for name in names:
            found = self.by_parent.get((parent.id if parent else None, name.casefold()))
            if found is None:  # made as `POST /categories` makes one: a free slug, breadcrumbs from the parent
                found = await taxonomy.create_category(self.session, CategoryCreate(
                    name=name, parent_id=parent.id if parent else None))
                self.by_parent[(found.parent_id, name.casefold())] = found
                self.definitions[found.id] = []
            parent = found
        return parent

    def rules(self, category: Category | None) -> dict[str, Any]:
        if category is None:
            return {}
        return effective(self.definitions.get(uuid.UUID(c["id"]), []) for c in category.path)

    async def brand(self, name: str | None, known: dict[str, Brand]) -> Brand | None:
        if name is None:
            return None
        found = known.get(name.casefold())
        if found is None:
            found = await taxonomy.create_brand(self.session, BrandCreate(name=name))
            known[name.casefold()] = found
        return found


async def apply(session: AsyncSession, items: Sequence[Item], *, cache: ProductCache | None) -> Outcome:
    """Write a batch in the session's transaction. A line that cannot be written as it stands (its
    SKUs belong to two products, its attributes break its category's definitions, its slug is
    taken) is reported and left out; a conflict found only while writing
    raises, and the caller writes the batch again one line at a time."""
    outcome = Outcome()
    repository = ProductRepository(session)
    taxonomy = _Taxonomy(session)
    owners = await repository.owners_of_skus([v.sku for item in items for v in item.product.variants])
    brands = {b.name.casefold(): b for b in await BrandRepository(session).named(
        {item.product.brand for item in items if item.product.brand})}
    fresh: list[tuple[Item, Category | None, Brand | None]] = []
    known: list[tuple[uuid.UUID, Item, Category | None, Brand | None]] = []
    for item in items:
        skus = [v.sku for v in item.product.variants]
        targets = {owners[sku] for sku in skus if sku in owners}
        if len(targets) > 1:
            outcome.errors.append((item.number, "its SKUs belong to more than one product"))
            continue
        category = await taxonomy.category(item.product.category_names())
        try:
            check(item.product.attributes, taxonomy.rules(category), category=category.name if category else "")
        except InvalidAttribute as exc:
            outcome.errors.append((item.number, exc.detail))
            continue
        brand = await taxonomy.brand(item.product.brand, brands)
        if targets:
            known.append((targets.pop(), item, category, brand))
        else:
            fresh.append((item, category, brand))
    stored = await repository.documents([product_id for product_id, *_ in known])
    for product_id, item, category, brand in known:
        current = stored.get(product_id)
        if current is not None and _same(current, item.product, category, brand):
            outcome.unchanged += 1  # a file loaded again: no write, no event
            continue
        await _update(session, product_id, item.product, category, brand, cache)
        outcome.updated += 1
    outcome.add(await _create(session, repository, fresh))
    return outcome


def _same(current: dict[str, Any], data: ProductImport, category: Category | None, brand: Brand | None) -> bool:
    """Whether the stored product already is what the line says."""
    wanted = data.model_dump(mode="json", include={"name", "description", "status", "attributes", "variants"})
    variants = [{**v, "options": v["options"] or {}} for v in wanted.pop("variants")]
    return (all(current[key] == value for key, value in wanted.items())
            and (data.slug is None or current["slug"] == data.slug)
            and current["media"] == products.media_json(data.media)
            and (current["category"] or {}).get("id") == (category.id if category else None)
            and (current["brand"] or {}).get("id") == (brand.id if brand else None)
            and current["variants"] == variants)


async def _update(session: AsyncSession, product_id: uuid.UUID, data: ProductImport, category: Category | None,
                  brand: Brand | None, cache: ProductCache | None) -> None:
    fields = data.model_dump(mode="json", include={"name", "description", "status", "attributes", "media",
                                                   "variants"})
    if data.slug is not None:
        fields["slug"] = data.slug
    changes = ProductUpdate.model_validate({**fields, "category_id": category.id if category else None,
                                            "brand_id": brand.id if brand else None})
    await products.update_product(session, product_id, changes, cache=cache)


async def _create(session: AsyncSession, repository: ProductRepository,
                  fresh: Sequence[tuple[Item, Category | None, Brand | None]]) -> Outcome:
    outcome = Outcome()
    if not fresh:
        return outcome
    chosen = [item.product.slug for item, _, _ in fresh if item.product.slug]
    taken = await repository.slugs_taken(chosen) if chosen else set()
    taken |= await repository.slugs_like_any({slugify(item.product.name) or "product" for item, _, _ in fresh})
    now = utcnow()
    made: list[Product] = []
    for item, category, brand in fresh:
        data = item.product
        if data.slug is not None and data.slug in taken:
            outcome.errors.append((item.number, f"a product already has the slug {data.slug!r}"))
            continue
        slug = data.slug or first_free(slugify(data.name) or "product", taken)
        taken.add(slug)
        product = Product(
            id=new_id(), name=data.name, slug=slug, description=data.description, status=data.status,
            brand_id=brand.id if brand else None, category_id=category.id if category else None,
            attributes=dict(data.attributes), media=products.media_json(data.media), rating_average=0.0,
            rating_count=0, rating_as_of=None, created_at=now, updated_at=now)
        product.variants = [products.new_variant(v, i) for i, v in enumerate(data.variants)]
        for variant in product.variants:
            variant.id, variant.product_id = new_id(), product.id
        products.reprice(product)
        # Not in the session: the rows go by the inserts below; the objects only shape the event.
        set_committed_value(product, "brand", brand)
        set_committed_value(product, "category", category)
        made.append(product)
    if not made:
        return outcome
    outbox, events, _ = outbox_rows(session, [(product_updated(p), p.id) for p in made])
    try:
        await insert_together(session, [
            (Product, [_columns(Product, p) for p in made]),
            (Variant, [_columns(Variant, v) for p in made for v in p.variants]),
            (ProductAttributeValue, [{"id": new_id(), "product_id": p.id, "key": key, "value": value}
                                     for p in made for key, value in sorted(filter_rows(p.attributes))]),
            (outbox, events),
        ])
    except IntegrityError as exc:  # a concurrent writer took a SKU or slug since the checks above
        raise CatalogConflict("A SKU or slug of this batch was taken meanwhile") from exc
    outcome.created = len(made)
    return outcome


def _columns(model: type[Product] | type[Variant], row: Product | Variant) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in model.__table__.columns if c.key != "tenant_id"}


def batches(items: Iterable[Line], size: int) -> Iterator[list[Line]]:
    batch: list[Line] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
