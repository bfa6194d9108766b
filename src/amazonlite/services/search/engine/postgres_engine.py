"""The PostgreSQL engine: a weighted `tsvector` per product and a `pg_trgm` vocabulary for typos.

One table holds every tenant's products; every statement is built on `_scope`, which applies the
tenant (and, for reads, active products only). The `tsvector` is written from the terms of
`analysis.tokenize` as a literal (name A, brand and category B, attributes C, description D), so
PostgreSQL's own parser and dictionaries never change a word and both engines match the same words.

Typos: `search_terms` holds each tenant's vocabulary (every term ever indexed; a term no product
has any more only costs a wasted candidate, and a rebuild after `clear` drops it). A query word of 4
letters or more looks up its candidates through the trigram index and keeps those that the shared
typo rule accepts; they join the word's `tsquery` as alternatives. The similarity thresholds are
lower bounds of what a term within the typo budget can score, so none is missed: one edit destroys
at most 4 of a word's trigrams, and a word of 4 letters has 5 (8 letters, 9 against 2 edits). The
one blind spot is the beginning of a longer term, which lacks the word's closing trigram: the last
word as a prefix with its first two letters swapped ("hsoe" for "shoes") shares no trigram with it,
so that variant is also looked up as a plain prefix; two swaps in a prefix of 8 letters or more can
still be missed. Short last words have low bounds, so their lookup reads more of the index.

The DDL is `METADATA` plus `CREATE EXTENSION pg_trgm`, both run by `create_schema` (to become the
service's first Alembic migration).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    and_,
    case,
    column,
    delete,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSQUERY, TSVECTOR
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from amazonlite.services.search.engine import analysis
from amazonlite.services.search.engine.analysis import Match, QueryWord, match_all
from amazonlite.services.search.engine.base import (
    FIELD_WEIGHTS,
    FUZZY_PREFIX_SHARE,
    FUZZY_SHARE,
    MAX_FACET_VALUES,
    PREFIX_SHARE,
    Facets,
    IndexedProduct,
    PreparedSearch,
    Price,
    PriceBand,
    Rating,
    SearchHit,
    SearchQuery,
    SearchResult,
    Suggestion,
    SuggestionCandidate,
    SuggestionKind,
    merge_facet_rows,
    pick_suggestions,
    prepare_prefix,
    prepare_search,
    price_bands,
    rating_boost,
    rating_sort_key,
    top_facet_counts,
)

ACTIVE, HIDDEN, DELETED = "active", "hidden", "deleted"
MAX_POSITION = 16_383  # PostgreSQL's largest tsvector position
MAX_POSITIONS_PER_TERM = 256  # and most positions it keeps of one lexeme
TRIGRAM_CANDIDATES = 200  # closest vocabulary terms checked against the typo rule, per word
MAX_FUZZY_TERMS = 50  # of which at most this many join the word's tsquery

# Each field's tsvector weight label, and ts_rank's weights in its {D, C, B, A} order.
FIELD_LABELS = {"name": "A", "brand": "B", "category": "B", "attributes": "C", "description": "D"}
LABEL_WEIGHTS = {FIELD_LABELS[f]: w for f, w in FIELD_WEIGHTS.items()}
RANK_WEIGHTS = "{" + ",".join(str(LABEL_WEIGHTS[label]) for label in "DCBA") + "}"

METADATA = MetaData()

PRODUCTS = Table(
    "search_products", METADATA,
    Column("tenant_id", String(64), primary_key=True),
    Column("product_id", Uuid, primary_key=True),
    # active: searchable; hidden: not active in the catalog, kept for its version and rating;
    # deleted: a tombstone, so that a late update of a deleted product stays ignored.
    Column("state", String(8), nullable=False),
    Column("updated_at", DateTime(timezone=True)),  # None on a tombstone
    Column("created_at", DateTime(timezone=True)),
    Column("name", Text, nullable=False, server_default=""),
    Column("slug", Text, nullable=False, server_default=""),
    Column("description", Text, nullable=False, server_default=""),
    Column("brand_id", Uuid),
    Column("brand_name", Text),
    Column("category_path", JSONB, nullable=False, server_default=text("'[]'::jsonb")),  # [{id, name}] root → leaf
    Column("category_ids", ARRAY(Uuid), nullable=False, server_default="{}"),
    Column("attributes", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("attribute_values", ARRAY(Text), nullable=False, server_default="{}"),  # analysis.attribute_value_keys
    Column("min_price", BigInteger, nullable=False, server_default="0"),
    Column("currency", String(3), nullable=False, server_default=""),
    Column("image", Text),
    Column("in_stock", Boolean),
    Column("rating_average", Float),
    Column("rating_count", Integer, nullable=False, server_default="0"),
    Column("rating_as_of", DateTime(timezone=True)),
    Column("rating_boost", Float, nullable=False, server_default="1"),  # base.rating_boost
    Column("rating_sort", Float, nullable=False, server_default="0"),  # base.rating_sort_key
    Column("name_key", Text, nullable=False, server_default=""),  # the name's terms: an exact name ranks first
    Column("document", TSVECTOR, nullable=False, server_default=""),
)
Index("ix_search_products_document", PRODUCTS.c.document, postgresql_using="gin")
Index("ix_search_products_category_ids", PRODUCTS.c.category_ids, postgresql_using="gin")
Index("ix_search_products_attribute_values", PRODUCTS.c.attribute_values, postgresql_using="gin")

TERMS = Table(
    "search_terms", METADATA,
    Column("tenant_id", String(64), primary_key=True),
    Column("term", Text, primary_key=True),
)
Index("ix_search_terms_trigram", TERMS.c.term, postgresql_using="gin", postgresql_ops={"term": "gin_trgm_ops"})

_CONTENT = [c.name for c in PRODUCTS.columns
            if c.name not in {"tenant_id", "product_id", "rating_average", "rating_count", "rating_as_of",
                              "rating_boost", "rating_sort"}]
_SORT_COLUMNS: dict[str, ColumnElement[Any]] = {
    "price_asc": PRODUCTS.c.min_price.asc(),
    "price_desc": PRODUCTS.c.min_price.desc(),
    "rating": PRODUCTS.c.rating_sort.desc(),
    "newest": PRODUCTS.c.created_at.desc(),
}


# Writing -----------------------------------------------------------------------------------------

def _quote(term: str) -> str:
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


def _tsvector(product: IndexedProduct) -> str:
    """The product's terms as a tsvector literal: "'term':1A,7D 'other':2A …"."""
    fields = {
        "name": [product.name], "brand": [product.brand_name or ""],
        "category": [c.name for c in product.categories],
        "attributes": analysis.attribute_texts(product.attributes), "description": [product.description],
    }
    positions: dict[str, list[str]] = {}
    position = 0
    for field, texts in fields.items():
        for text_ in texts:
            for term in analysis.analyze(text_):
                position = min(position + 1, MAX_POSITION)
                kept = positions.setdefault(term, [])
                if len(kept) < MAX_POSITIONS_PER_TERM:
                    kept.append(f"{position}{FIELD_LABELS[field]}")
    return " ".join(f"{_quote(term)}:{','.join(places)}" for term, places in positions.items())


def _row(tenant_id: str, product: IndexedProduct) -> dict[str, Any]:
    categories = product.categories
    return {
        "tenant_id": tenant_id, "product_id": product.product_id,
        "state": ACTIVE if product.searchable else HIDDEN,
        "updated_at": product.updated_at, "created_at": product.created_at,
        "name": product.name, "slug": product.slug, "description": product.description,
        "brand_id": product.brand_id, "brand_name": product.brand_name,
        "category_path": [{"id": str(c.id), "name": c.name} for c in categories],
        "category_ids": [c.id for c in categories],
        "attributes": dict(product.attributes),
        "attribute_values": analysis.attribute_value_keys(product.attributes),
        "min_price": product.min_price, "currency": product.currency, "image": product.image,
        "in_stock": product.in_stock,
        "rating_average": product.rating_average, "rating_count": product.rating_count, "rating_as_of": None,
        "rating_boost": rating_boost(product.rating_average, product.rating_count),
        "rating_sort": rating_sort_key(product.rating_average, product.rating_count),
        "name_key": " ".join(analysis.analyze(product.name)),
        "document": _tsvector(product) if product.searchable else "",
    }


# Querying ----------------------------------------------------------------------------------------

def _lexeme(term: str, label: str, *, prefix: bool = False) -> str:
    """One tsquery operand: the term, as a prefix or not, in fields of weight `label` (or any)."""
    marks = ("*" if prefix else "") + label
    return _quote(term) + (f":{marks}" if marks else "")


@dataclass(frozen=True, slots=True)
class _Word:
    """A query word and the vocabulary terms within its typo budget: of the whole term, or (the
    last word) of its beginning only."""

    word: QueryWord
    typo: tuple[str, ...] = ()
    typo_prefix: tuple[str, ...] = ()

    def exact_or_typo(self, label: str = "") -> str:
        return " | ".join(_lexeme(term, label) for term in (self.word.text, *self.typo))

    def tsquery(self, label: str = "") -> str:
        """Any form of the word (in fields of weight `label`, or in any field)."""
        forms = [self.exact_or_typo(label), *(_lexeme(term, label) for term in self.typo_prefix)]
        if self.word.last:
            forms.append(_lexeme(self.word.text, label, prefix=True))
        return " | ".join(forms)


def _tsq(query: str) -> ColumnElement[Any]:
    return literal(query, TSQUERY)


def _matches(query: str) -> ColumnElement[bool]:
    return PRODUCTS.c.document.op("@@")(_tsq(query))


def _if(condition: ColumnElement[bool], value: float) -> ColumnElement[float]:
    return case((condition, value), else_=0.0)


_RANK_WEIGHTS: ColumnElement[Any] = literal_column(f"'{RANK_WEIGHTS}'::real[]")  # a constant of this module


def _word_rank(word: _Word) -> ColumnElement[float]:
    """ts_rank of the exact term, plus constant shares of each field's weight for the word found as
    a prefix (last word), within its typo budget, or (last word) beginning within it; the same
    shape as the tantivy engine's BM25 + constants (see `base.PREFIX_SHARE`)."""
    text_ = word.word.text
    rank: ColumnElement[float] = func.ts_rank(_RANK_WEIGHTS, PRODUCTS.c.document, _tsq(_quote(text_)))
    for label, weight in LABEL_WEIGHTS.items():
        if word.word.last:
            rank = rank + _if(_matches(_lexeme(text_, label, prefix=True)), weight * PREFIX_SHARE)
        if word.word.typos:
            rank = rank + _if(_matches(word.exact_or_typo(label)), weight * FUZZY_SHARE)
        if word.word.typos and word.word.last:
            rank = rank + _if(_matches(word.tsquery(label)), weight * FUZZY_PREFIX_SHARE)
    return rank


def _trigram_floor(length: int, typos: int, *, inside: bool) -> float:
    """A similarity below any a term within `typos` edits can have (pg_trgm counts the distinct
    trigrams of the word padded with two spaces before and one after: length + 1 of them, and one
    edit destroys at most 4 of them (a swap). `inside`: compared to the start of a longer term,
    where the trailing trigram cannot match."""
    word_trigrams = length + 1
    shared = word_trigrams - 4 * typos - (1 if inside else 0)
    if shared <= 0:
        return 0.01
    return 0.9 * shared / (2 * word_trigrams + typos - shared)


class PostgresSearchEngine:
    """`SearchEngine` on PostgreSQL (asyncpg through SQLAlchemy's async engine)."""

    def __init__(self, engine: AsyncEngine, *, owns_engine: bool = False) -> None:
        self._engine = engine
        self._owns_engine = owns_engine

    @classmethod
    def from_url(cls, url: str, **engine_options: Any) -> PostgresSearchEngine:
        """An engine with its own connection pool (closed by `close`), e.g. postgresql+asyncpg://…"""
        return cls(create_async_engine(url, **engine_options), owns_engine=True)

    async def create_schema(self) -> None:
        """Create the extension, tables and indexes that are missing (idempotent)."""
        async with self._engine.begin() as conn:
            await conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
            await conn.run_sync(METADATA.create_all)

    async def close(self) -> None:
        if self._owns_engine:
            await self._engine.dispose()

    # Writes --------------------------------------------------------------------------------------

    async def upsert(self, tenant_id: str, products: Sequence[IndexedProduct]) -> None:
        newest: dict[UUID, IndexedProduct] = {}
        for product in products:  # one row per product in a statement: the newest of the batch
            known = newest.get(product.product_id)
            if known is None or known.updated_at < product.updated_at:
                newest[product.product_id] = product
        if not newest:
            return
        rows = [_row(tenant_id, newest[key]) for key in sorted(newest)]  # one lock order for all writers
        terms = sorted({term for item in newest.values() if item.searchable for term in self._terms(item)})
        statement = pg_insert(PRODUCTS)
        statement = statement.on_conflict_do_update(
            index_elements=[PRODUCTS.c.tenant_id, PRODUCTS.c.product_id],
            set_={name: statement.excluded[name] for name in _CONTENT},  # the rating has its own events
            where=and_(PRODUCTS.c.state != DELETED, PRODUCTS.c.updated_at < statement.excluded.updated_at),
        )
        async with self._engine.begin() as conn:
            await conn.execute(statement, rows)
            if terms:
                await conn.execute(pg_insert(TERMS).on_conflict_do_nothing(),
                                   [{"tenant_id": tenant_id, "term": term} for term in terms])

    @staticmethod
    def _terms(product: IndexedProduct) -> set[str]:
        texts = [product.name, product.brand_name or "", product.description,
                 *(c.name for c in product.categories), *analysis.attribute_texts(product.attributes)]
        return {term for text_ in texts for term in analysis.analyze(text_)}

    async def set_rating(self, tenant_id: str, product_id: UUID, average: float | None, count: int,
                         as_of: dt.datetime) -> bool:
        statement = (
            update(PRODUCTS)
            .where(PRODUCTS.c.tenant_id == tenant_id, PRODUCTS.c.product_id == product_id,
                   PRODUCTS.c.state != DELETED,
                   or_(PRODUCTS.c.rating_as_of.is_(None), PRODUCTS.c.rating_as_of < as_of))
            .values(rating_average=average, rating_count=count, rating_as_of=as_of,
                    rating_boost=rating_boost(average, count), rating_sort=rating_sort_key(average, count))
            .returning(PRODUCTS.c.product_id)
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(statement)).first() is not None

    async def delete(self, tenant_id: str, product_ids: Sequence[UUID]) -> None:
        if not product_ids:
            return
        statement = pg_insert(PRODUCTS)
        statement = statement.on_conflict_do_update(
            index_elements=[PRODUCTS.c.tenant_id, PRODUCTS.c.product_id],
            set_={"state": DELETED, "updated_at": None, "document": ""},
        )
        rows = [{"tenant_id": tenant_id, "product_id": product_id, "state": DELETED}
                for product_id in sorted(set(product_ids))]
        async with self._engine.begin() as conn:
            await conn.execute(statement, rows)

    async def clear(self, tenant_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(PRODUCTS).where(PRODUCTS.c.tenant_id == tenant_id))
            await conn.execute(delete(TERMS).where(TERMS.c.tenant_id == tenant_id))

    # Reads ---------------------------------------------------------------------------------------

    @staticmethod
    def _scope(tenant_id: str) -> list[ColumnElement[bool]]:
        return [PRODUCTS.c.tenant_id == tenant_id, PRODUCTS.c.state == ACTIVE]

    async def count(self, tenant_id: str) -> int:
        async with self._engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).where(*self._scope(tenant_id))) or 0)

    async def _expand(self, conn: AsyncConnection, tenant_id: str, words: Sequence[QueryWord]) -> list[_Word]:
        """Each word with the tenant's vocabulary terms within its typo budget (that are neither the
        word nor, for the last word, one it begins, which the tsquery finds by itself)."""
        expanded: list[_Word] = []
        for word in words:
            if not word.typos:
                expanded.append(_Word(word))
                continue
            similar: ColumnElement[bool] = TERMS.c.term.op("%")(word.text)
            closeness: ColumnElement[float] = func.similarity(TERMS.c.term, word.text)
            if word.last:
                swapped = word.text[1] + word.text[0] + word.text[2:]
                similar = or_(similar, literal(word.text).op("<%")(TERMS.c.term),
                              TERMS.c.term.startswith(swapped, autoescape=True))
                closeness = func.greatest(closeness, func.word_similarity(word.text, TERMS.c.term))
            await conn.execute(select(
                func.set_config("pg_trgm.similarity_threshold",
                                str(_trigram_floor(len(word.text), word.typos, inside=False)), True),
                func.set_config("pg_trgm.word_similarity_threshold",
                                str(_trigram_floor(len(word.text), word.typos, inside=True)), True)))
            rows = await conn.scalars(
                select(TERMS.c.term).where(TERMS.c.tenant_id == tenant_id, similar)
                .order_by(closeness.desc(), TERMS.c.term).limit(TRIGRAM_CANDIDATES))
            fuzzy = [term for term in rows if word.match(term) == Match.FUZZY][:MAX_FUZZY_TERMS]
            typo = tuple(t for t in fuzzy if analysis.edit_distance(word.text, t, word.typos) <= word.typos)
            expanded.append(_Word(word, typo, tuple(t for t in fuzzy if t not in typo)))
        return expanded

    def _where(self, tenant_id: str, prepared: PreparedSearch, words: Sequence[_Word]) -> list[ColumnElement[bool]]:
        filters = prepared.filters
        where = [*self._scope(tenant_id), _matches(" | ".join(f"({w.tsquery()})" for w in words))]
        if filters.category_id is not None:
            where.append(PRODUCTS.c.category_ids.contains([filters.category_id]))
        if filters.brand_ids:
            where.append(PRODUCTS.c.brand_id.in_(list(filters.brand_ids)))
        if filters.min_price is not None:
            where.append(PRODUCTS.c.min_price >= filters.min_price)
        if filters.max_price is not None:
            where.append(PRODUCTS.c.min_price <= filters.max_price)
        for accepted in prepared.attribute_values:
            where.append(PRODUCTS.c.attribute_values.overlap(list(accepted)))
        if filters.in_stock is not None:
            where.append(PRODUCTS.c.in_stock.is_(filters.in_stock))
        return where

    async def search(self, tenant_id: str, query: SearchQuery) -> SearchResult:
        prepared = prepare_search(tenant_id, query)
        async with self._engine.connect() as conn:
            # One snapshot for the page, the total and the facets.
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            words = await self._expand(conn, tenant_id, prepared.words)
            where = self._where(tenant_id, prepared, words)
            every_word = and_(*(_matches(w.tsquery()) for w in words))
            order: list[ColumnElement[Any]] = [every_word.desc()]
            if prepared.sort == "relevance":
                relevance = sum((_word_rank(w) for w in words[1:]), _word_rank(words[0])) * PRODUCTS.c.rating_boost
                order += [(PRODUCTS.c.name_key == prepared.phrase).desc(), relevance.desc()]
            else:
                order.append(_SORT_COLUMNS[prepared.sort])
            page = await conn.execute(
                select(PRODUCTS.c.product_id, PRODUCTS.c.name, PRODUCTS.c.slug, PRODUCTS.c.description,
                       PRODUCTS.c.min_price, PRODUCTS.c.currency, PRODUCTS.c.rating_average,
                       PRODUCTS.c.rating_count, PRODUCTS.c.image)
                .where(*where).order_by(*order, PRODUCTS.c.product_id).offset(prepared.offset).limit(prepared.limit))
            hits = tuple(
                SearchHit(product_id=row.product_id, name=row.name, slug=row.slug,
                          price=Price(row.min_price, row.currency), rating=Rating(row.rating_average, row.rating_count),
                          image=row.image, snippet=analysis.snippet(row.name, row.description, prepared.words))
                for row in page)
            total, facets = await self._facets(conn, where)
        return SearchResult(hits=hits, total=total, facets=facets, next_cursor=prepared.next_cursor(total))

    async def _facets(self, conn: AsyncConnection, where: Sequence[ColumnElement[bool]]) -> tuple[int, Facets]:
        bands = price_bands()
        price = PRODUCTS.c.min_price
        counts = (await conn.execute(select(func.count(), *(
            func.count().filter(and_(price >= low, price < high) if high is not None else price >= low)
            for _, low, high in bands)).where(*where))).one()
        brands = await conn.execute(
            select(PRODUCTS.c.brand_id, PRODUCTS.c.brand_name, func.count())
            .where(*where, PRODUCTS.c.brand_id.is_not(None)).group_by(PRODUCTS.c.brand_id, PRODUCTS.c.brand_name))
        path = self._path()
        categories = await conn.execute(
            select(path.c.id, path.c.name, func.count()).select_from(PRODUCTS).join(path, true())
            .where(*where).group_by(path.c.id, path.c.name))
        return int(counts[0]), Facets(
            categories=top_facet_counts(merge_facet_rows([(r[0], r[1], r[2]) for r in categories])),
            brands=top_facet_counts(merge_facet_rows([(r[0], r[1] or "", r[2]) for r in brands])),
            price_bands=tuple(PriceBand(label, low, high, int(counts[i + 1]))
                              for i, (label, low, high) in enumerate(bands)),
        )

    @staticmethod
    def _path() -> Any:
        """The product's categories as rows (id, name): FROM search_products, jsonb_to_recordset(…)."""
        return (func.jsonb_to_recordset(PRODUCTS.c.category_path)
                .table_valued(column("id", Uuid), column("name", Text))
                .render_derived(name="path", with_types=True))

    # Suggestions ---------------------------------------------------------------------------------

    async def suggest(self, tenant_id: str, prefix: str, limit: int) -> list[Suggestion]:
        query_words = prepare_prefix(prefix)
        if not query_words or limit < 1:
            return []
        async with self._engine.connect() as conn:
            words = await self._expand(conn, tenant_id, query_words)
            in_names = and_(*self._scope(tenant_id), *(_matches(w.tsquery("A")) for w in words))
            rank = sum((_word_rank(w) for w in words[1:]), _word_rank(words[0])) * PRODUCTS.c.rating_boost
            products = await conn.execute(
                select(PRODUCTS.c.product_id, PRODUCTS.c.name, rank).where(in_names)
                .order_by(rank.desc(), PRODUCTS.c.product_id).limit(limit * 3))
            candidates = [SuggestionCandidate(Suggestion(row.name, "product", row.product_id), match, float(row[2]))
                          for row in products if (match := match_all(query_words, row.name)) is not None]
            # Brands and categories share the weight B: each group is checked against its own name.
            in_b = and_(*self._scope(tenant_id), *(_matches(w.tsquery("B")) for w in words))
            brands = await conn.execute(
                select(PRODUCTS.c.brand_id, PRODUCTS.c.brand_name, func.count())
                .where(in_b, PRODUCTS.c.brand_id.is_not(None))
                .group_by(PRODUCTS.c.brand_id, PRODUCTS.c.brand_name)
                .order_by(func.count().desc()).limit(MAX_FACET_VALUES))
            path = self._path()
            categories = await conn.execute(
                select(path.c.id, path.c.name, func.count()).select_from(PRODUCTS).join(path, true())
                .where(in_b).group_by(path.c.id, path.c.name).order_by(func.count().desc()).limit(MAX_FACET_VALUES))
            kinds: tuple[tuple[SuggestionKind, Any], ...] = (("brand", brands), ("category", categories))
            for kind, rows in kinds:
                for value_id, name, count in rows:
                    if name and (match := match_all(query_words, name)) is not None:
                        candidates.append(SuggestionCandidate(Suggestion(name, kind, value_id), match, count))
        return pick_suggestions(candidates, limit)
