"""The tantivy engine: a Lucene-class index (BM25, fuzzy terms, aggregations) in a directory of
the replica, or in memory when given none (tests).

Every tantivy call runs in a worker thread (`asyncio.to_thread`): a search is CPU work of a few
milliseconds and a commit writes and fsyncs segment files, and either would hold up every other
request on the event loop. The binding lets go of the GIL inside tantivy, so searches run side by
side; writes take turns under one lock, as tantivy allows one writer per index, and each write
commits and reloads the reader before it lets go, so the next write sees it.

All tenants share one index; every query is scoped by a `tenant` term, and a document's key is
"<tenant>:<product id>". Text fields get the terms of `analysis.tokenize` as pre-tokenized text,
so that this engine and PostgreSQL's match the same words.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import orjson
import tantivy

from amazonlite.services.search.engine import analysis
from amazonlite.services.search.engine.analysis import QueryWord, match_all
from amazonlite.services.search.engine.base import (
    FIELD_WEIGHTS,
    FUZZY_PREFIX_SHARE,
    FUZZY_SHARE,
    MAX_FACET_VALUES,
    PREFIX_SHARE,
    CategoryRef,
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
    merge_facet_rows,
    pick_suggestions,
    prepare_prefix,
    prepare_search,
    price_bands,
    rating_boost,
    rating_sort_key,
    top_facet_counts,
)

T = TypeVar("T")

ACTIVE, HIDDEN, DELETED = "active", "hidden", "deleted"
TEXT_FIELDS: tuple[tuple[str, float], ...] = tuple(FIELD_WEIGHTS.items())
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_AGGREGATION_SIZE = 10_000  # distinct brands or categories counted per facet
_SORT_FIELDS: dict[str, tuple[str, tantivy.Order]] = {
    "price_asc": ("price", tantivy.Order.Asc),
    "price_desc": ("price", tantivy.Order.Desc),
    "rating": ("rating_sort", tantivy.Order.Desc),
    "newest": ("created", tantivy.Order.Desc),
}


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    for name in ("key", "tenant", "state", "name_key", "brand_id", "category_ids", "attribute_values", "stock"):
        builder.add_text_field(name, tokenizer_name="raw")  # exact terms: filters and deletes
    for name, _ in TEXT_FIELDS:
        builder.add_text_field(name, tokenizer_name="raw", index_option="freq")  # pre-tokenized
    for name in ("brand_facet", "category_facet"):  # "<id>:<name>" values for terms aggregations
        builder.add_text_field(name, tokenizer_name="raw", fast=True)
    builder.add_integer_field("price", indexed=True, fast=True)
    builder.add_integer_field("created", fast=True)
    builder.add_float_field("rating_weight", fast=True)
    builder.add_float_field("rating_sort", fast=True)
    builder.add_bytes_field("source", stored=True)  # the record, to rebuild the document and answer hits
    return builder.build()


@dataclasses.dataclass(frozen=True, slots=True)
class _Record:
    """What the index holds of one product: the product with its rating, or a tombstone."""

    tenant_id: str
    product_id: UUID
    state: str
    product: IndexedProduct | None
    rating_as_of: dt.datetime | None = None

    @property
    def key(self) -> str:
        return _key(self.tenant_id, self.product_id)


def _key(tenant_id: str, product_id: UUID) -> str:
    return f"{tenant_id}:{product_id}"


def _dump(record: _Record) -> bytes:
    return orjson.dumps({
        "tenant_id": record.tenant_id, "product_id": record.product_id, "state": record.state,
        "product": dataclasses.asdict(record.product) if record.product else None,
        "rating_as_of": record.rating_as_of,
    })


def _load(source: bytes) -> _Record:
    data = orjson.loads(source)
    product = data["product"]
    return _Record(
        tenant_id=data["tenant_id"], product_id=UUID(data["product_id"]), state=data["state"],
        product=_product(product) if product else None,
        rating_as_of=dt.datetime.fromisoformat(data["rating_as_of"]) if data["rating_as_of"] else None,
    )


def _product(data: dict[str, Any]) -> IndexedProduct:
    def uuid_or_none(value: str | None) -> UUID | None:
        return UUID(value) if value else None

    return IndexedProduct(**{
        **data,
        "product_id": UUID(data["product_id"]), "brand_id": uuid_or_none(data["brand_id"]),
        "category_id": uuid_or_none(data["category_id"]),
        "category_path": tuple(CategoryRef(UUID(c["id"]), c["name"]) for c in data["category_path"]),
        "created_at": dt.datetime.fromisoformat(data["created_at"]),
        "updated_at": dt.datetime.fromisoformat(data["updated_at"]),
    })


def _micros(moment: dt.datetime) -> int:
    return (moment - _EPOCH) // dt.timedelta(microseconds=1)


def _rating_weight(product: IndexedProduct) -> float:
    """tantivy's `weight_by_field` multiplies a score by log2(2 + value); this value makes the
    factor twice `rating_boost` (twice for every document alike, so the order is the boost's)."""
    return float(2 ** (2 * rating_boost(product.rating_average, product.rating_count)) - 2)


def _pre_tokenized(texts: Iterable[str]) -> tantivy.PreTokenizedString | None:
    tokens: list[tantivy.Token] = []
    offset = 0
    joined: list[str] = []
    for text in texts:
        for token in analysis.tokenize(text):
            tokens.append(tantivy.Token(token.term, len(tokens), offset + token.start, offset + token.end))
        joined.append(text)
        offset += len(text) + 1
    return tantivy.PreTokenizedString(" ".join(joined), tokens) if tokens else None


def _document(record: _Record) -> tantivy.Document:
    doc = tantivy.Document()
    doc.add_text("key", record.key)
    doc.add_text("tenant", record.tenant_id)
    doc.add_text("state", record.state)
    doc.add_bytes("source", _dump(record))
    product = record.product
    if record.state != ACTIVE or product is None:
        return doc  # kept only for its version (and rating): never matched
    categories = product.categories
    texts = {
        "name": [product.name], "brand": [product.brand_name or ""], "category": [c.name for c in categories],
        "attributes": analysis.attribute_texts(product.attributes), "description": [product.description],
    }
    for field, values in texts.items():
        if (pre := _pre_tokenized(values)) is not None:
            doc.add_pre_tokenized_text(field, pre)
    doc.add_text("name_key", " ".join(analysis.analyze(product.name)))
    if product.brand_id is not None:
        doc.add_text("brand_id", str(product.brand_id))
        doc.add_text("brand_facet", f"{product.brand_id}:{product.brand_name or ''}")
    for category in categories:
        doc.add_text("category_ids", str(category.id))
        doc.add_text("category_facet", f"{category.id}:{category.name}")
    for value in analysis.attribute_value_keys(product.attributes):
        doc.add_text("attribute_values", value)
    doc.add_text("stock", {True: "yes", False: "no", None: "unknown"}[product.in_stock])
    doc.add_integer("price", product.min_price)
    doc.add_integer("created", _micros(product.created_at))
    doc.add_float("rating_weight", _rating_weight(product))
    doc.add_float("rating_sort", rating_sort_key(product.rating_average, product.rating_count))
    return doc


def _count(result: tantivy.SearchResult) -> int:
    """The number of matching documents (searches count by default; the binding's stubs omit it)."""
    return int(result.count)  # type: ignore[attr-defined]


def _facet_key(value: str) -> tuple[UUID, str]:
    return UUID(value[:36]), value[37:]


class TantivySearchEngine:
    """`SearchEngine` on a tantivy index in `directory` (created if missing), or in memory."""

    def __init__(self, directory: str | Path | None = None, *, writer_heap_bytes: int = 50_000_000) -> None:
        self._schema = _schema()
        if directory is None:
            self._index = tantivy.Index(self._schema)
        else:
            Path(directory).mkdir(parents=True, exist_ok=True)
            self._index = tantivy.Index(self._schema, path=str(directory))
        self._writer: tantivy.IndexWriter | None = self._index.writer(writer_heap_bytes, 1)
        self._write_lock = threading.Lock()

    # Writes --------------------------------------------------------------------------------------

    async def upsert(self, tenant_id: str, products: Sequence[IndexedProduct]) -> None:
        await asyncio.to_thread(self._upsert, tenant_id, products)

    async def set_rating(self, tenant_id: str, product_id: UUID, average: float | None, count: int,
                         as_of: dt.datetime) -> bool:
        return await asyncio.to_thread(self._set_rating, tenant_id, product_id, average, count, as_of)

    async def delete(self, tenant_id: str, product_ids: Sequence[UUID]) -> None:
        await asyncio.to_thread(self._delete, tenant_id, product_ids)

    async def clear(self, tenant_id: str) -> None:
        await asyncio.to_thread(self._write, lambda writer: writer.delete_documents_by_term("tenant", tenant_id))

    def _write(self, change: Callable[[tantivy.IndexWriter], T]) -> T:
        """Run `change(writer)` and commit it, or roll it back; one write at a time."""
        with self._write_lock:
            if self._writer is None:
                raise RuntimeError("the search engine is closed")
            try:
                outcome = change(self._writer)
                self._writer.commit()
            except BaseException:
                self._writer.rollback()
                raise
            self._index.reload()
            return outcome

    def _records(self, keys: Sequence[str]) -> dict[str, _Record]:
        if not keys:
            return {}
        searcher = self._index.searcher()
        query = tantivy.Query.term_set_query(self._schema, "key", list(keys))
        records = (_load(searcher.doc(address)["source"][0]) for _, address in searcher.search(query, len(keys)).hits)
        return {record.key: record for record in records}

    @staticmethod
    def _replace(writer: tantivy.IndexWriter, record: _Record) -> None:
        writer.delete_documents_by_term("key", record.key)  # applies to documents added before it only
        writer.add_document(_document(record))

    def _upsert(self, tenant_id: str, products: Sequence[IndexedProduct]) -> None:
        def change(writer: tantivy.IndexWriter) -> None:
            stored = self._records([_key(tenant_id, p.product_id) for p in products])
            changed: dict[str, _Record] = {}
            for product in sorted(products, key=lambda p: p.updated_at):
                key = _key(tenant_id, product.product_id)
                known = stored.get(key)
                if known is not None and (known.state == DELETED or known.product is None
                                          or known.product.updated_at >= product.updated_at):
                    continue
                if known is not None and known.product is not None:  # the rating has its own events
                    product = dataclasses.replace(product, rating_average=known.product.rating_average,
                                                  rating_count=known.product.rating_count)
                record = _Record(tenant_id, product.product_id, ACTIVE if product.searchable else HIDDEN, product,
                                 rating_as_of=known.rating_as_of if known else None)
                stored[key] = changed[key] = record
            for record in changed.values():
                self._replace(writer, record)

        self._write(change)

    def _set_rating(self, tenant_id: str, product_id: UUID, average: float | None, count: int,
                    as_of: dt.datetime) -> bool:
        def change(writer: tantivy.IndexWriter) -> bool:
            known = self._records([_key(tenant_id, product_id)]).get(_key(tenant_id, product_id))
            if known is None or known.product is None or known.state == DELETED:
                return False
            if known.rating_as_of is not None and known.rating_as_of >= as_of:
                return False
            product = dataclasses.replace(known.product, rating_average=average, rating_count=count)
            self._replace(writer, dataclasses.replace(known, product=product, rating_as_of=as_of))
            return True

        return self._write(change)

    def _delete(self, tenant_id: str, product_ids: Sequence[UUID]) -> None:
        def change(writer: tantivy.IndexWriter) -> None:
            for product_id in dict.fromkeys(product_ids):  # a tombstone: a late update stays ignored
                self._replace(writer, _Record(tenant_id, product_id, DELETED, None))

        self._write(change)

    # Reads ---------------------------------------------------------------------------------------

    async def count(self, tenant_id: str) -> int:
        def run() -> int:
            query = self._must(self._scope(tenant_id))
            return _count(self._index.searcher().search(query, 1))

        return await asyncio.to_thread(run)

    async def search(self, tenant_id: str, query: SearchQuery) -> SearchResult:
        prepared = prepare_search(tenant_id, query)  # before the thread: InvalidQuery costs nothing
        return await asyncio.to_thread(self._search, tenant_id, prepared)

    async def suggest(self, tenant_id: str, prefix: str, limit: int) -> list[Suggestion]:
        words = prepare_prefix(prefix)
        if not words or limit < 1:
            return []
        return await asyncio.to_thread(self._suggest, tenant_id, words, limit)

    async def close(self) -> None:
        def run() -> None:
            with self._write_lock:
                if self._writer is not None:
                    self._writer.wait_merging_threads()  # ends the writer and releases the index lock
                    self._writer = None

        await asyncio.to_thread(run)

    # Queries -------------------------------------------------------------------------------------

    def _term(self, field: str, value: str) -> tantivy.Query:
        return tantivy.Query.term_query(self._schema, field, value)

    @staticmethod
    def _must(filters: Sequence[tantivy.Query], *scored: tantivy.Query,
              must_not: tantivy.Query | None = None) -> tantivy.Query:
        clauses = [(tantivy.Occur.Must, q) for q in (*scored, *filters)]
        if must_not is not None:
            clauses.append((tantivy.Occur.MustNot, must_not))
        return tantivy.Query.boolean_query(clauses)

    def _scope(self, tenant_id: str) -> list[tantivy.Query]:
        return [self._term("tenant", tenant_id), self._term("state", ACTIVE)]

    def _filters(self, tenant_id: str, prepared: PreparedSearch) -> list[tantivy.Query]:
        """The tenant, active products and every filter, each scoring nothing (filters do not rank)."""
        filters = prepared.filters
        queries = self._scope(tenant_id)
        if filters.category_id is not None:
            queries.append(self._term("category_ids", str(filters.category_id)))
        if filters.brand_ids:
            queries.append(tantivy.Query.term_set_query(self._schema, "brand_id", [str(b) for b in filters.brand_ids]))
        if filters.min_price is not None or filters.max_price is not None:
            queries.append(tantivy.Query.range_query(self._schema, "price", tantivy.FieldType.Integer,
                                                     filters.min_price, filters.max_price))
        for accepted in prepared.attribute_values:
            queries.append(tantivy.Query.term_set_query(self._schema, "attribute_values", list(accepted)))
        if filters.in_stock is not None:
            queries.append(self._term("stock", "yes" if filters.in_stock else "no"))
        return [tantivy.Query.const_score_query(q, 0.0) for q in queries]

    def _word_query(self, word: QueryWord, fields: Sequence[tuple[str, float]]) -> tantivy.Query:
        """One word in any of `fields`: BM25 for the exact term, plus constant shares of the field's
        weight for a prefix (the last word), a term within the typo budget, and (the last word) a
        term beginning within the typo budget. See `base.PREFIX_SHARE`."""
        def fuzzy(distance: int, prefix: bool, share: float) -> tantivy.Query:
            found = tantivy.Query.fuzzy_term_query(self._schema, field, word.text, distance, True, prefix)
            return tantivy.Query.const_score_query(found, weight * share)

        clauses: list[tantivy.Query] = []
        for field, weight in fields:
            clauses.append(tantivy.Query.boost_query(self._term(field, word.text), weight))
            if word.last:
                clauses.append(fuzzy(0, True, PREFIX_SHARE))
            if word.typos:
                clauses.append(fuzzy(word.typos, False, FUZZY_SHARE))
            if word.typos and word.last:
                clauses.append(fuzzy(word.typos, True, FUZZY_PREFIX_SHARE))
        return tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in clauses])

    def _tiers(self, filters: list[tantivy.Query],
               prepared: PreparedSearch) -> tuple[list[tantivy.Query], tantivy.Query]:
        """The queries whose hits come one after the other: products with every word (for relevance,
        those named exactly as the query first), then those with only some; and the union."""
        words = [self._word_query(word, TEXT_FIELDS) for word in prepared.words]
        every = tantivy.Query.boolean_query([(tantivy.Occur.Must, w) for w in words])
        some = tantivy.Query.boolean_query([(tantivy.Occur.Should, w) for w in words])
        tiers: list[tantivy.Query] = []
        if prepared.sort == "relevance":
            exact_name = self._term("name_key", prepared.phrase)
            tiers += [self._must(filters, every, exact_name), self._must(filters, every, must_not=exact_name)]
        else:
            tiers.append(self._must(filters, every))
        if len(words) > 1:
            tiers.append(self._must(filters, some, must_not=every))
        return tiers, self._must(filters, some)

    def _page(self, searcher: tantivy.Searcher, tiers: Sequence[tantivy.Query],
              prepared: PreparedSearch) -> tuple[list[tantivy.DocAddress], int]:
        """Hits `offset` to `offset + limit` of the tiers read one after the other, and the total."""
        options: dict[str, Any] = {"weight_by_field": "rating_weight"}
        if prepared.sort in _SORT_FIELDS:
            field, order = _SORT_FIELDS[prepared.sort]
            options = {"order_by_field": field, "order": order}
        skip, wanted, total = prepared.offset, prepared.limit, 0
        addresses: list[tantivy.DocAddress] = []
        for tier in tiers:
            result = searcher.search(tier, max(wanted, 1), offset=skip, **options)  # a limit of 0 panics
            count = _count(result)
            if wanted:
                addresses += [address for _, address in result.hits[:wanted]]
                wanted = prepared.limit - len(addresses)
            skip = max(0, skip - count)
            total += count
        return addresses, total

    def _search(self, tenant_id: str, prepared: PreparedSearch) -> SearchResult:
        searcher = self._index.searcher()  # one snapshot for the page, the total and the facets
        filters = self._filters(tenant_id, prepared)
        tiers, matching = self._tiers(filters, prepared)
        addresses, total = self._page(searcher, tiers, prepared)
        hits = tuple(self._hit(searcher.doc(address), prepared.words) for address in addresses)
        return SearchResult(hits=hits, total=total, facets=self._facets(searcher, matching),
                            next_cursor=prepared.next_cursor(total))

    @staticmethod
    def _hit(doc: tantivy.Document, words: Sequence[QueryWord]) -> SearchHit:
        product = _load(doc["source"][0]).product
        assert product is not None  # only active products match, and they have one
        return SearchHit(product_id=product.product_id, name=product.name, slug=product.slug,
                         price=Price(product.min_price, product.currency),
                         rating=Rating(product.rating_average, product.rating_count), image=product.image,
                         snippet=analysis.snippet(product.name, product.description, words))

    @staticmethod
    def _facets(searcher: tantivy.Searcher, matching: tantivy.Query) -> Facets:
        bands = price_bands()
        ranges = [{"key": label, "from": low, **({"to": high} if high is not None else {})}
                  for label, low, high in bands]
        result = searcher.aggregate(matching, {
            "categories": {"terms": {"field": "category_facet", "size": _AGGREGATION_SIZE}},
            "brands": {"terms": {"field": "brand_facet", "size": _AGGREGATION_SIZE}},
            "prices": {"range": {"field": "price", "ranges": ranges}},
        })

        def counts(name: str) -> dict[UUID, tuple[str, int]]:
            rows = [(*_facet_key(b["key"]), int(b["doc_count"])) for b in result[name]["buckets"]]
            return merge_facet_rows(rows)

        per_band = {b["key"]: int(b["doc_count"]) for b in result["prices"]["buckets"]}
        return Facets(
            categories=top_facet_counts(counts("categories")), brands=top_facet_counts(counts("brands")),
            price_bands=tuple(PriceBand(label, low, high, per_band.get(label, 0)) for label, low, high in bands),
        )

    # Suggestions ---------------------------------------------------------------------------------

    def _suggest(self, tenant_id: str, words: Sequence[QueryWord], limit: int) -> list[Suggestion]:
        searcher = self._index.searcher()
        scope = self._scope(tenant_id)

        def every_word_in(field: str) -> tantivy.Query:
            return self._must(scope, *(self._word_query(word, [(field, 1.0)]) for word in words))

        candidates: list[SuggestionCandidate] = []
        found = searcher.search(every_word_in("name"), limit * 3, weight_by_field="rating_weight")
        for score, address in found.hits:
            product = _load(searcher.doc(address)["source"][0]).product
            if product is not None and (match := match_all(words, product.name)) is not None:
                candidates.append(SuggestionCandidate(Suggestion(product.name, "product", product.product_id),
                                                      match, score))
        for kind, field in (("brand", "brand"), ("category", "category")):
            buckets = searcher.aggregate(every_word_in(field), {
                "values": {"terms": {"field": f"{field}_facet", "size": MAX_FACET_VALUES}}})["values"]["buckets"]
            for bucket in buckets:
                value_id, name = _facet_key(bucket["key"])
                # A product matches by its category path: keep the categories whose own name matches.
                if (match := match_all(words, name)) is not None:
                    candidates.append(SuggestionCandidate(Suggestion(name, kind, value_id), match,  # type: ignore[arg-type]
                                                          bucket["doc_count"]))
        return pick_suggestions(candidates, limit)
