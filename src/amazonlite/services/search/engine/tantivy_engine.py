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
_MAX_EXPANDED = 100  # terms of a word's form looked up one by one; past it (a short prefix), a walk costs less
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


def _pre_tokenized(texts: Iterable[str], terms: set[str]) -> tantivy.PreTokenizedString | None:
    """The texts as one field value; their terms are added to `terms`."""
    tokens: list[tantivy.Token] = []
    offset = 0
    joined: list[str] = []
    for text in texts:
        for token in analysis.tokenize(text):
            tokens.append(tantivy.Token(token.term, len(tokens), offset + token.start, offset + token.end))
            terms.add(token.term)
        joined.append(text)
        offset += len(text) + 1
    return tantivy.PreTokenizedString(" ".join(joined), tokens) if tokens else None


def _document(record: _Record, terms: set[str]) -> tantivy.Document:
    """The record as a document; the terms of its text fields are added to `terms`."""
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
        if (pre := _pre_tokenized(values, terms)) is not None:
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


def _address_key(address: tantivy.DocAddress) -> tuple[int, int]:
    return address.segment_ord, address.doc


def _facet_key(value: str) -> tuple[UUID, str]:
    return UUID(value[:36]), value[37:]


@dataclasses.dataclass(frozen=True, slots=True)
class _Expansion:
    """The terms a query word matches in each of its looser forms (itself among them when it is a
    term): see `base.PREFIX_SHARE`."""

    prefix: list[str]  # beginning with the word (the last word only)
    typo: list[str]  # within its typo budget
    typo_prefix: list[str]  # beginning within its typo budget (the last word only)


class _Vocabulary:
    """Every term of the text fields, each a document of a small index in memory, to expand a
    query word into the terms it matches as a prefix or with typos.

    A fuzzy term query walks a field's term dictionary every time a search runs it: with five
    fields, up to three forms of each word, and several queries to a search, that walk was most of
    a search's time. Here each form of a word walks one dictionary once, with the same automaton
    (the fields then look up the terms found), and is remembered until new terms come in."""

    _REMEMBERED = 10_000  # words whose expansions are kept; past it, they are forgotten together

    def __init__(self, terms: Iterable[str]) -> None:
        builder = tantivy.SchemaBuilder()
        builder.add_text_field("term", tokenizer_name="raw", fast=True)  # fast: hits carry their term
        self._schema = builder.build()
        self._index = tantivy.Index(self._schema)
        self._writer = self._index.writer(15_000_000, 1)
        self._known: set[str] = set()
        self._expansions: dict[QueryWord, _Expansion] = {}
        self.add(terms)

    def add(self, terms: Iterable[str]) -> None:
        """Learn the new ones among `terms` (one writer at a time: the engine's write lock)."""
        new = set(terms) - self._known
        if not new:
            return
        for term in new:
            doc = tantivy.Document()
            doc.add_text("term", term)
            self._writer.add_document(doc)
        self._writer.commit()
        self._index.reload()
        self._known |= new
        self._expansions = {}  # a search that took the old one before the reload fills only that

    def expand(self, word: QueryWord) -> _Expansion:
        expansions = self._expansions
        found = expansions.get(word)
        if found is None:
            if len(expansions) >= self._REMEMBERED:
                expansions.clear()
            found = expansions[word] = self._expand(word)
        return found

    def _expand(self, word: QueryWord) -> _Expansion:
        searcher = self._index.searcher()

        def matching(distance: int, prefix: bool) -> list[str]:
            query = tantivy.Query.fuzzy_term_query(self._schema, "term", word.text, distance, True, prefix)
            found = searcher.search(query, max(searcher.num_docs, 1), count=False, order_by_field="term")
            return [str(term) for term, _ in found.hits]

        return _Expansion(prefix=matching(0, True) if word.last else [],
                          typo=matching(word.typos, False) if word.typos else [],
                          typo_prefix=matching(word.typos, True) if word.typos and word.last else [])


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
        searcher = self._index.searcher()
        self._vocabulary = _Vocabulary(term for field, _ in TEXT_FIELDS
                                       for term, _ in searcher.terms_with_prefix(field, ""))
        self._new_terms: set[str] = set()  # of the documents of the write under way

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
                self._vocabulary.add(self._new_terms)  # before the documents can be found
                self._writer.commit()
            except BaseException:
                self._writer.rollback()
                raise
            finally:
                self._new_terms.clear()
            self._index.reload()
            return outcome

    def _records(self, keys: Sequence[str]) -> dict[str, _Record]:
        if not keys:
            return {}
        searcher = self._index.searcher()
        query = tantivy.Query.term_set_query(self._schema, "key", list(keys))
        records = (_load(searcher.doc(address)["source"][0]) for _, address in searcher.search(query, len(keys)).hits)
        return {record.key: record for record in records}

    def _replace(self, writer: tantivy.IndexWriter, record: _Record) -> None:
        writer.delete_documents_by_term("key", record.key)  # applies to documents added before it only
        writer.add_document(_document(record, self._new_terms))

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

    def _any_term(self, field: str, values: Iterable[str]) -> tantivy.Query:
        """Documents with any of the terms. Not `term_set_query`: it costs a tenth of a millisecond
        even for one term, where a term query costs a few microseconds."""
        return tantivy.Query.boolean_query([(tantivy.Occur.Should, self._term(field, v)) for v in values])

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
            queries.append(self._any_term("brand_id", (str(b) for b in filters.brand_ids)))
        if filters.min_price is not None or filters.max_price is not None:
            queries.append(tantivy.Query.range_query(self._schema, "price", tantivy.FieldType.Integer,
                                                     filters.min_price, filters.max_price))
        for accepted in prepared.attribute_values:
            queries.append(self._any_term("attribute_values", accepted))
        if filters.in_stock is not None:
            queries.append(self._term("stock", "yes" if filters.in_stock else "no"))
        return [tantivy.Query.const_score_query(q, 0.0) for q in queries]

    def _word_query(self, word: QueryWord, fields: Sequence[tuple[str, float]]) -> tantivy.Query:
        """One word in any of `fields`: BM25 for the exact term, plus constant shares of the field's
        weight for a prefix (the last word), a term within the typo budget, and (the last word) a
        term beginning within the typo budget. See `base.PREFIX_SHARE`."""
        expansion = self._vocabulary.expand(word)
        forms = ((expansion.prefix, 0, True, PREFIX_SHARE), (expansion.typo, word.typos, False, FUZZY_SHARE),
                 (expansion.typo_prefix, word.typos, True, FUZZY_PREFIX_SHARE))
        clauses: list[tantivy.Query] = []
        for field, weight in fields:
            clauses.append(tantivy.Query.boost_query(self._term(field, word.text), weight))
            for terms, distance, prefix, share in forms:
                if len(terms) > _MAX_EXPANDED:  # a short prefix: one walk of the dictionary costs less
                    found = tantivy.Query.fuzzy_term_query(self._schema, field, word.text, distance, True, prefix)
                elif terms:
                    found = self._any_term(field, terms)
                else:
                    continue
                clauses.append(tantivy.Query.const_score_query(found, weight * share))
        return tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in clauses])

    def _page(self, searcher: tantivy.Searcher, filters: list[tantivy.Query], words: Sequence[tantivy.Query],
              some: tantivy.Query, prepared: PreparedSearch) -> list[tantivy.DocAddress]:
        """Hits `offset` to `offset + limit` of, one after the other: products with every word (for
        relevance, those named exactly as the query first), then those with only some.

        The word queries are the costly part (a term looked up per field for each term a word stands
        for), so each list is read once, deep enough for the page, and the ones before it are taken
        out of it in Python rather than by a query: a product named exactly as the query has every
        word in its name, so the name alone finds those; and when the page reaches past the products
        with every word, fewer of them than the page's end, they were all read."""
        end = prepared.offset + prepared.limit
        options: dict[str, Any] = {"weight_by_field": "rating_weight"}
        if prepared.sort in _SORT_FIELDS:
            field, order = _SORT_FIELDS[prepared.sort]
            options = {"order_by_field": field, "order": order}
        every = tantivy.Query.boolean_query([(tantivy.Occur.Must, word) for word in words])
        listed: list[tantivy.DocAddress] = []
        if prepared.sort == "relevance":
            exact_name = self._term("name_key", prepared.phrase)
            named = searcher.search(self._must(filters, exact_name), end)
            if _count(named) > 1:  # ordered as the others, by how well the rest of the product matches
                named = searcher.search(self._must(filters, every, exact_name), end, count=False, **options)
            listed = [address for _, address in named.hits]
        if len(listed) >= end:
            return listed[prepared.offset:end]
        with_every = searcher.search(self._must(filters, every), end, **options)
        seen = {_address_key(address) for address in listed}
        listed += [address for _, address in with_every.hits if _address_key(address) not in seen]
        if _count(with_every) < end and len(prepared.words) > 1:
            seen = {_address_key(address) for _, address in with_every.hits}  # all of them
            with_some = searcher.search(self._must(filters, some), end, count=False, **options)
            listed += [address for _, address in with_some.hits if _address_key(address) not in seen]
        return listed[prepared.offset:end]

    def _search(self, tenant_id: str, prepared: PreparedSearch) -> SearchResult:
        searcher = self._index.searcher()  # one snapshot for the page, the total and the facets
        filters = self._filters(tenant_id, prepared)
        words = [self._word_query(word, TEXT_FIELDS) for word in prepared.words]
        some = tantivy.Query.boolean_query([(tantivy.Occur.Should, word) for word in words])
        facets, total = self._facets(searcher, self._must(filters, some))
        addresses = self._page(searcher, filters, words, some, prepared) if total else []
        hits = tuple(self._hit(searcher.doc(address), prepared.words) for address in addresses)
        return SearchResult(hits=hits, total=total, facets=facets, next_cursor=prepared.next_cursor(total))

    @staticmethod
    def _hit(doc: tantivy.Document, words: Sequence[QueryWord]) -> SearchHit:
        """The hit from the stored record's few fields it shows, read as JSON: rebuilding the whole
        product (its dates, ids and categories) cost more than the search itself."""
        product = orjson.loads(doc["source"][0])["product"]  # only active products match, and they have one
        return SearchHit(product_id=UUID(product["product_id"]), name=product["name"], slug=product["slug"],
                         price=Price(product["min_price"], product["currency"]),
                         rating=Rating(product["rating_average"], product["rating_count"]), image=product["image"],
                         snippet=analysis.snippet(product["name"], product["description"], words))

    @staticmethod
    def _facets(searcher: tantivy.Searcher, matching: tantivy.Query) -> tuple[Facets, int]:
        """The facets of the matching products, and how many they are (every one has a price)."""
        bands = price_bands()
        ranges = [{"key": label, "from": low, **({"to": high} if high is not None else {})}
                  for label, low, high in bands]
        result = searcher.aggregate(matching, {
            "categories": {"terms": {"field": "category_facet", "size": _AGGREGATION_SIZE}},
            "brands": {"terms": {"field": "brand_facet", "size": _AGGREGATION_SIZE}},
            "prices": {"range": {"field": "price", "ranges": ranges}},
            "total": {"value_count": {"field": "price"}},
        })

        def counts(name: str) -> dict[UUID, tuple[str, int]]:
            rows = [(*_facet_key(b["key"]), int(b["doc_count"])) for b in result[name]["buckets"]]
            return merge_facet_rows(rows)

        per_band = {b["key"]: int(b["doc_count"]) for b in result["prices"]["buckets"]}
        return Facets(
            categories=top_facet_counts(counts("categories")), brands=top_facet_counts(counts("brands")),
            price_bands=tuple(PriceBand(label, low, high, per_band.get(label, 0)) for label, low, high in bands),
        ), int(result["total"]["value"])

    # Suggestions ---------------------------------------------------------------------------------

    def _suggest(self, tenant_id: str, words: Sequence[QueryWord], limit: int) -> list[Suggestion]:
        searcher = self._index.searcher()
        scope = self._scope(tenant_id)

        def every_word_in(field: str) -> tantivy.Query:
            return self._must(scope, *(self._word_query(word, [(field, 1.0)]) for word in words))

        candidates: list[SuggestionCandidate] = []
        found = searcher.search(every_word_in("name"), limit * 3, weight_by_field="rating_weight")
        for score, address in found.hits:
            product = orjson.loads(searcher.doc(address)["source"][0])["product"]  # as in `_hit`
            if (match := match_all(words, name := product["name"])) is not None:
                candidates.append(SuggestionCandidate(Suggestion(name, "product", UUID(product["product_id"])),
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
