"""The search engine interface, its data, and the rules both engines share.

The search service keeps a read model of the catalog (built from its events) in one of two
engines: tantivy (an index on disk, per replica) or PostgreSQL (a table). Both implement
`SearchEngine`, take the same `IndexedProduct` and `SearchQuery` and answer the same
`SearchResult`; the rules that decide what matches and in which order are here or in `analysis`,
so that the same relevance suite passes on both.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol
from uuid import UUID

import orjson

from amazonlite.services.search.engine.analysis import Match, QueryWord, analyze, attribute_value_key, query_words

MAX_QUERY_LENGTH = 200  # characters of q, after stripping
MAX_QUERY_WORDS = 10  # distinct words of q that count; the rest are ignored (as Meilisearch does)
MAX_LIMIT = 100
MAX_DEPTH = 1_000  # hits a client may page through; past it, it should refine the query
MAX_FILTER_VALUES = 100  # brands, or accepted values of one attribute
MAX_FILTER_ATTRIBUTES = 20
MAX_FACET_VALUES = 30  # categories or brands listed in a facet, most products first (a storefront shows a few)

SearchSort = Literal["relevance", "price_asc", "price_desc", "rating", "newest"]
SORTS: frozenset[str] = frozenset({"relevance", "price_asc", "price_desc", "rating", "newest"})
SuggestionKind = Literal["product", "brand", "category"]
AttributeScalar = str | int | float | bool
AttributeValue = AttributeScalar | list[AttributeScalar]

# The weight of a match in each field, relative to the name. PostgreSQL's ts_rank takes them as
# its {D, C, B, A} weights (brand and category share B); tantivy boosts each field's BM25 by them.
FIELD_WEIGHTS: Mapping[str, float] = {
    "name": 1.0, "brand": 0.4, "category": 0.4, "attributes": 0.2, "description": 0.1,
}
# A word found as the beginning of a term (last word only), within its typo budget of a term, or
# within it of the beginning of a term (last word only) scores this share of the field's weight,
# as a constant (no term statistics). An exact term also counts as each looser form (it begins
# itself and is 0 typos away) and a prefix as a typo in a prefix, so per field the sums order them:
# exact (BM25 + 0.9) > prefix (0.6) > typo (0.4) > typo in a prefix (0.1).
PREFIX_SHARE = 0.5
FUZZY_SHARE = 0.3
FUZZY_PREFIX_SHARE = 0.1


class SearchError(Exception):
    """Base of the engine's errors that a client caused."""


class InvalidQuery(SearchError, ValueError):
    """The query cannot be run as given (empty or too long q, a limit out of range, a price range
    upside down…): the service answers 400 with this message."""


class InvalidCursor(InvalidQuery):
    """The cursor was not made by this engine for this very query and sort (or is too deep)."""


# Data --------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CategoryRef:
    id: UUID
    name: str


@dataclass(frozen=True, slots=True)
class IndexedProduct:
    """A product as the catalog's `product.updated.v1` carries it, flattened for search.

    `category_path` runs from the root to the product's category; `min_price` is in minor units.
    `in_stock` is None until inventory has said. Only an `active` product can be found."""

    product_id: UUID
    name: str
    slug: str
    description: str
    status: str
    min_price: int
    currency: str
    created_at: dt.datetime
    updated_at: dt.datetime
    brand_id: UUID | None = None
    brand_name: str | None = None
    category_id: UUID | None = None
    category_name: str | None = None
    category_path: tuple[CategoryRef, ...] = ()
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    image: str | None = None
    in_stock: bool | None = None
    rating_average: float | None = None
    rating_count: int = 0

    @property
    def searchable(self) -> bool:
        return self.status == "active"

    @property
    def categories(self) -> tuple[CategoryRef, ...]:
        """The category and its ancestors (the category alone if the event gave no path)."""
        if self.category_path:
            return self.category_path
        if self.category_id is not None:
            return (CategoryRef(self.category_id, self.category_name or ""),)
        return ()


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """Every filter narrows the result (AND). `category_id` takes in its descendants; within one
    attribute, any accepted value matches (OR), a list-valued attribute when any item does."""

    category_id: UUID | None = None
    brand_ids: Sequence[UUID] = ()
    min_price: int | None = None
    max_price: int | None = None
    attributes: Mapping[str, Sequence[AttributeScalar]] = field(default_factory=dict)
    in_stock: bool | None = None


@dataclass(frozen=True, slots=True)
class SearchQuery:
    q: str
    filters: SearchFilters = field(default_factory=SearchFilters)
    sort: SearchSort = "relevance"
    limit: int = 20
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class Price:
    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class Rating:
    average: float | None
    count: int


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One product found. `name` is plain text; `snippet` is HTML: escaped text with `<mark>`s."""

    product_id: UUID
    name: str
    slug: str
    price: Price
    rating: Rating
    image: str | None
    snippet: str


@dataclass(frozen=True, slots=True)
class FacetCount:
    id: UUID
    name: str
    count: int


@dataclass(frozen=True, slots=True)
class PriceBand:
    """Products priced from `min_amount` (included) to `max_amount` (excluded; None: no top)."""

    label: str
    min_amount: int
    max_amount: int | None
    count: int


@dataclass(frozen=True, slots=True)
class Facets:
    """Counts over every product the query matches with all its filters applied (not the
    "disjunctive" style where a facet ignores its own filter). A category counts the products in
    it or any of its descendants; every price band is listed, empty ones too."""

    categories: tuple[FacetCount, ...] = ()
    brands: tuple[FacetCount, ...] = ()
    price_bands: tuple[PriceBand, ...] = ()


@dataclass(frozen=True, slots=True)
class SearchResult:
    hits: tuple[SearchHit, ...]
    total: int
    facets: Facets
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Suggestion:
    text: str
    kind: SuggestionKind
    id: UUID | None


class SearchEngine(Protocol):
    """A tenant-scoped full-text index of the catalog's active products.

    Writes are idempotent and ordered by version, since events may come late or twice: a product
    keeps the state with the latest `updated_at` and its rating the one with the latest `as_of`.
    Nothing of one tenant is ever found, counted, faceted or suggested for another."""

    async def upsert(self, tenant_id: str, products: Sequence[IndexedProduct]) -> None:
        """Insert or replace each product unless the stored one is as new or newer. A product that
        is not active is kept out of search. The stored rating survives (it has its own events);
        a product seen for the first time takes the rating it carries."""
        ...

    async def set_rating(self, tenant_id: str, product_id: UUID, average: float | None, count: int,
                         as_of: dt.datetime) -> bool:
        """Store the rating unless one as of `as_of` or later is stored; False when ignored (or the
        product is unknown)."""
        ...

    async def delete(self, tenant_id: str, product_ids: Sequence[UUID]) -> None:
        """Remove the products for good: a late update of a deleted product is ignored."""
        ...

    async def clear(self, tenant_id: str) -> None:
        """Forget everything of the tenant (before a rebuild from the catalog)."""
        ...

    async def count(self, tenant_id: str) -> int:
        """Searchable (active) products of the tenant."""
        ...

    async def search(self, tenant_id: str, query: SearchQuery) -> SearchResult:
        """Raises `InvalidQuery` (or `InvalidCursor`) for a query it will not run."""
        ...

    async def suggest(self, tenant_id: str, prefix: str, limit: int) -> list[Suggestion]:
        """Completions of what is being typed: brands, categories, then products whose names have
        every word of `prefix` (the last one as a prefix; typos allowed from 4 letters); exact
        completions before fuzzy ones."""
        ...

    async def close(self) -> None:
        ...


# Queries -----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PreparedSearch:
    """A validated query as the engines run it."""

    words: tuple[QueryWord, ...]
    phrase: str  # every term of q, in order: a product whose name is exactly this ranks first
    filters: SearchFilters
    attribute_values: tuple[tuple[str, ...], ...]  # per filtered attribute, its accepted value keys
    sort: SearchSort
    offset: int
    limit: int  # never reaching past MAX_DEPTH
    fingerprint: str

    def next_cursor(self, total: int) -> str | None:
        after = self.offset + self.limit
        return encode_cursor(self.fingerprint, after) if after < min(total, MAX_DEPTH) else None


def prepare_search(tenant_id: str, query: SearchQuery) -> PreparedSearch:
    """Validate `query` (raising `InvalidQuery`) and turn it into the words and filters to run."""
    q = query.q.strip()
    if not q:
        raise InvalidQuery("q must not be empty")
    if len(q) > MAX_QUERY_LENGTH:
        raise InvalidQuery(f"q must be at most {MAX_QUERY_LENGTH} characters")
    words = query_words(q, limit=MAX_QUERY_WORDS)
    if not words:
        raise InvalidQuery("q has no letters or digits to search for")
    if query.sort not in SORTS:
        raise InvalidQuery(f"sort must be one of {', '.join(sorted(SORTS))}")
    if not 1 <= query.limit <= MAX_LIMIT:
        raise InvalidQuery(f"limit must be between 1 and {MAX_LIMIT}")
    filters = query.filters
    attribute_values = _check_filters(filters)
    fingerprint = _fingerprint(tenant_id, words, filters, attribute_values, query.sort)
    offset = 0 if query.cursor is None else decode_cursor(query.cursor, fingerprint)
    return PreparedSearch(words=words, phrase=" ".join(analyze(q)), filters=filters,
                          attribute_values=attribute_values, sort=query.sort, offset=offset,
                          limit=min(query.limit, MAX_DEPTH - offset), fingerprint=fingerprint)


def _check_filters(filters: SearchFilters) -> tuple[tuple[str, ...], ...]:
    for bound in (filters.min_price, filters.max_price):
        if bound is not None and bound < 0:
            raise InvalidQuery("prices must not be negative")
    if filters.min_price is not None and filters.max_price is not None and filters.min_price > filters.max_price:
        raise InvalidQuery("min_price must not be above max_price")
    if len(filters.brand_ids) > MAX_FILTER_VALUES:
        raise InvalidQuery(f"at most {MAX_FILTER_VALUES} brands")
    if len(filters.attributes) > MAX_FILTER_ATTRIBUTES:
        raise InvalidQuery(f"at most {MAX_FILTER_ATTRIBUTES} attribute filters")
    accepted: list[tuple[str, ...]] = []
    for key, values in sorted(filters.attributes.items()):
        if not values or len(values) > MAX_FILTER_VALUES:
            raise InvalidQuery(f"attribute {key!r} needs between 1 and {MAX_FILTER_VALUES} values")
        accepted.append(tuple(sorted({attribute_value_key(key, value) for value in values})))
    return tuple(accepted)


def prepare_prefix(prefix: str) -> tuple[QueryWord, ...]:
    """The words of an autocomplete prefix (none: nothing to suggest yet)."""
    if len(prefix.strip()) > MAX_QUERY_LENGTH:
        raise InvalidQuery(f"the prefix must be at most {MAX_QUERY_LENGTH} characters")
    return query_words(prefix, limit=MAX_QUERY_WORDS)


# Cursors -----------------------------------------------------------------------------------------
# A cursor is the offset of the next page and a fingerprint of what it pages through (tenant,
# words, filters, sort), base64url JSON. It is not signed: changing the offset only moves within
# the same results, capped at MAX_DEPTH, and a cursor for anything else is refused.

def _fingerprint(tenant_id: str, words: Sequence[QueryWord], filters: SearchFilters,
                 attribute_values: Sequence[Sequence[str]], sort: str) -> str:
    canonical = orjson.dumps([
        tenant_id, [[w.text, w.last] for w in words], sort,
        str(filters.category_id) if filters.category_id else None,
        sorted(str(b) for b in filters.brand_ids), filters.min_price, filters.max_price,
        attribute_values, filters.in_stock,
    ])
    return hashlib.sha256(canonical).hexdigest()[:16]


def encode_cursor(fingerprint: str, offset: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"f": fingerprint, "o": offset})).rstrip(b"=").decode()


def decode_cursor(cursor: str, fingerprint: str) -> int:
    """The offset a cursor continues from; `InvalidCursor` unless it was made for this query."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise InvalidCursor("the cursor is not one this search gave") from exc
    if not isinstance(value, dict) or value.get("f") != fingerprint:
        raise InvalidCursor("the cursor belongs to another query, filter or sort")
    offset = value.get("o")
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 < offset < MAX_DEPTH:
        raise InvalidCursor(f"the cursor is not one this search gave (at most {MAX_DEPTH} hits can be paged)")
    return offset


# Ratings -----------------------------------------------------------------------------------------

RATING_PRIOR_MEAN = 3.0  # the middle of the 1-5 scale: what we believe of a product nobody rated
RATING_PRIOR_WEIGHT = 5  # as many imaginary reviews as this hold that belief
RATING_BOOST_SPAN = 0.05  # the best possible rating lifts a score by 5%, the worst lowers it by 5%


def bayesian_rating(average: float | None, count: int) -> float:
    """The average pulled towards the prior by few reviews: (w·m + n·avg) / (w + n), with prior mean
    m = 3 and weight w = 5. A 5★ from one review is 3.33; from 100 reviews, 4.90; none, 3.0."""
    if average is None or count <= 0:
        return RATING_PRIOR_MEAN
    return (RATING_PRIOR_WEIGHT * RATING_PRIOR_MEAN + count * average) / (RATING_PRIOR_WEIGHT + count)


def rating_boost(average: float | None, count: int) -> float:
    """The factor a product's relevance score is multiplied by:

        boost = 1 + 0.05 · (bayes - 3) / 2,   bayes = bayesian_rating(average, count)

    which lies in [0.95, 1.05] and is exactly 1 for a product with no reviews (neutral). Small on
    purpose: it orders products that match equally well, it does not make a weaker match win."""
    return 1 + RATING_BOOST_SPAN * (bayesian_rating(average, count) - RATING_PRIOR_MEAN) / 2


def rating_sort_key(average: float | None, count: int) -> float:
    """The key of `sort=rating` (descending): the Bayesian rating, so that a 4.8 of 500 reviews
    comes before a 5.0 of one; products without reviews come last."""
    return bayesian_rating(average, count) if average is not None and count > 0 else 0.0


# Price bands -------------------------------------------------------------------------------------

PRICE_BAND_EDGES: tuple[int, ...] = (0, 50_000, 100_000, 250_000, 500_000)  # minor units


def price_bands() -> list[tuple[str, int, int | None]]:
    """(label, from, to) of each band: '0-50000', …, '500000+'."""
    bands: list[tuple[str, int, int | None]] = []
    for low, high in zip(PRICE_BAND_EDGES, (*PRICE_BAND_EDGES[1:], None), strict=True):
        bands.append((f"{low}-{high}" if high is not None else f"{low}+", low, high))
    return bands


def top_facet_counts(counts: Mapping[UUID, tuple[str, int]]) -> tuple[FacetCount, ...]:
    """Facet values, most products first (then by name), at most MAX_FACET_VALUES."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1][1], item[1][0], str(item[0])))
    return tuple(FacetCount(id=key, name=name, count=count) for key, (name, count) in ordered[:MAX_FACET_VALUES])


def merge_facet_rows(rows: Sequence[tuple[UUID, str, int]]) -> dict[UUID, tuple[str, int]]:
    """Counts per id from (id, name, count) rows. A brand or category renamed while its products
    were being re-indexed appears under two names: one entry, named as most of its products say."""
    merged: dict[UUID, tuple[str, int]] = {}
    for key, name, count in sorted(rows, key=lambda row: -row[2]):
        known = merged.get(key)
        merged[key] = (known[0], known[1] + count) if known else (name, count)
    return merged


# Suggestions -------------------------------------------------------------------------------------

_KIND_ORDER: Mapping[str, int] = {"brand": 0, "category": 1, "product": 2}


@dataclass(frozen=True, slots=True)
class SuggestionCandidate:
    suggestion: Suggestion
    match: Match  # the worst match among the prefix's words
    weight: float  # products in the brand or category; a product's relevance


def pick_suggestions(candidates: Sequence[SuggestionCandidate], limit: int) -> list[Suggestion]:
    """Completions typed right (exactly or as a prefix) before those that need a typo forgiven;
    then brands, categories, products; then the biggest brand or category, the best product."""
    ordered = sorted(candidates, key=lambda c: (c.match == Match.FUZZY, _KIND_ORDER[c.suggestion.kind],
                                                -c.weight, c.suggestion.text.casefold()))
    return [c.suggestion for c in ordered[:limit]]
