"""The relevance suite of the search engines: every test runs on tantivy and on PostgreSQL.

Tests that only read share one engine per module, loaded with the fixture catalog; tests that
write get a fresh one (tantivy: a new index in a temporary directory; PostgreSQL: the module's
database under tenants of their own, which is as fresh given tenant isolation).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from amazonlite.services.search.engine import tantivy_engine
from amazonlite.services.search.engine.base import (
    MAX_DEPTH,
    InvalidCursor,
    InvalidQuery,
    SearchEngine,
    SearchFilters,
    SearchQuery,
    SearchResult,
    SearchSort,
    Suggestion,
    encode_cursor,
    prepare_search,
    price_bands,
)
from amazonlite.services.search.engine.postgres_engine import PostgresSearchEngine
from amazonlite.services.search.engine.tantivy_engine import TantivySearchEngine
from tests.services.search import catalog_fixture as catalog
from tests.services.search.catalog_fixture import ACME, GLOBEX, brand_id, category_id, uid
from tests.support import servers

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclasses.dataclass(frozen=True)
class Kind:
    name: str
    postgres_url: str | None

    async def open(self, directory: Path | None) -> SearchEngine:
        if self.postgres_url is None:
            return TantivySearchEngine(directory)
        engine = PostgresSearchEngine.from_url(self.postgres_url)
        await engine.create_schema()
        return engine


@pytest.fixture(scope="module", params=["tantivy", pytest.param("postgres", marks=pytest.mark.postgres)])
def kind(request: pytest.FixtureRequest) -> Iterator[Kind]:
    """The engine under test; PostgreSQL in a database of this module's own, dropped afterwards."""
    if request.param == "tantivy":
        yield Kind("tantivy", None)
        return
    with servers.postgres_database("search") as url:
        yield Kind("postgres", url)


async def load(engine: SearchEngine, acme: str = ACME, globex: str = GLOBEX) -> None:
    await engine.upsert(acme, catalog.ACME_PRODUCTS)
    await engine.upsert(globex, catalog.GLOBEX_PRODUCTS)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engine(kind: Kind, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SearchEngine]:
    """One engine with the catalog, for the tests that only read."""
    opened = await kind.open(tmp_path_factory.mktemp("index"))
    await load(opened)
    yield opened
    await opened.close()


@dataclasses.dataclass(frozen=True)
class Fresh:
    engine: SearchEngine
    acme: str
    globex: str
    kind: Kind
    directory: Path


@pytest_asyncio.fixture(loop_scope="module")
async def fresh(kind: Kind, tmp_path: Path) -> AsyncIterator[Fresh]:
    """An engine of this test's own with the catalog, for the tests that write."""
    suffix = uuid.uuid4().hex[:8]
    opened = await kind.open(tmp_path / "index")
    acme, globex = f"{ACME}-{suffix}", f"{GLOBEX}-{suffix}"
    await load(opened, acme, globex)
    yield Fresh(opened, acme, globex, kind, tmp_path / "index")
    await opened.close()


def keys(result: SearchResult) -> list[str]:
    return [catalog.key_of(hit.product_id) for hit in result.hits]


def query(q: str, *, filters: SearchFilters | None = None, sort: SearchSort = "relevance", limit: int = 100,
          cursor: str | None = None) -> SearchQuery:
    return SearchQuery(q=q, filters=filters or SearchFilters(), sort=sort, limit=limit, cursor=cursor)


async def find(engine: SearchEngine, q: str, tenant: str = ACME, *, sort: SearchSort = "relevance") -> list[str]:
    return keys(await engine.search(tenant, query(q, sort=sort)))


def expected_keys(q: str, filters: SearchFilters | None = None) -> set[str]:
    return {p.slug for p in catalog.expected(q, filters)}


class TestRelevance:
    async def test_an_exact_name_comes_first(self, engine: SearchEngine) -> None:
        found = await find(engine, "Aurora Wireless Headphones")
        assert found[0] == "hp-aurora"
        assert found[1] == "hp-aurora-case"  # every word, and more
        assert (await find(engine, "nimbus x5 phone case"))[0] == "pa-case"

    async def test_one_typo_in_a_five_letter_word(self, engine: SearchEngine) -> None:
        assert (await find(engine, "chiar"))[0] == "fu-chair"  # two letters swapped: one edit
        assert (await find(engine, "lanp"))[0] == "li-lamp"  # four letters: one edit allowed
        assert (await find(engine, "oakline office chiar"))[0] == "fu-chair"

    async def test_two_typos_in_a_long_word(self, engine: SearchEngine) -> None:
        assert (await find(engine, "mechenicel"))[0] == "ca-keyboard"
        assert (await find(engine, "mechenicel keyboard"))[0] == "ca-keyboard"

    async def test_a_short_word_is_not_matched_fuzzily(self, engine: SearchEngine) -> None:
        assert await find(engine, "cep") == []  # "cap" is one edit away, but three letters must be exact
        assert await find(engine, "baseball cap") == ["ha-cap"]

    async def test_an_exact_match_ranks_above_a_fuzzy_one(self, engine: SearchEngine) -> None:
        found = await find(engine, "cast")
        assert found[0] == "ck-skillet"
        # "case" is one edit from "cast": found, but after
        assert {"pa-case", "hp-aurora-case"} <= set(found[1:])

    async def test_the_last_word_may_be_a_prefix(self, engine: SearchEngine) -> None:
        found = await find(engine, "wireless head")
        assert found[:2] == ["hp-aurora", "hp-aurora-case"]
        # earbuds are in the Headphones category: every word; the mouse has only "wireless"
        assert found.index("hp-sonique-buds") < found.index("ca-mouse")
        assert (await find(engine, "smartph"))[:2] == ["ph-nimbus-x5", "ph-nimbus-lite"]

    async def test_every_word_beats_some_words(self, engine: SearchEngine) -> None:
        found = await find(engine, "wireless mouse")
        assert found[0] == "ca-mouse"
        assert set(found) == expected_keys("wireless mouse")  # with those that have only one word
        assert found.index("ca-mousepad") > found.index("hp-aurora")  # "mouse" begins "mousepad"
        # In a description only, both words still beat one word in the name and the brand.
        assert (await find(engine, "sonique metres"))[0] == "pa-cable"
        found = await find(engine, "black bluetooth")
        every = {p.slug for p in catalog.SEARCHABLE_ACME if catalog.matches_every_word(p, "black bluetooth")}
        assert every == {"hp-aurora", "ca-mouse"}
        assert set(found[:2]) == every
        assert set(found[2:]) == expected_keys("black bluetooth") - every != set()

    async def test_better_rated_products_come_first_among_equal_matches(self, engine: SearchEngine) -> None:
        found = await find(engine, "nimbus smartphone")
        assert found[:2] == ["ph-nimbus-x5", "ph-nimbus-lite"]  # 4.4 of 900 reviews, 3.8 of 150

    async def test_brand_and_category_words(self, engine: SearchEngine) -> None:
        assert set(await find(engine, "kettlecraft")) == {"ck-skillet", "ck-kettle", "ck-cafe", "ck-pan"}
        assert set(await find(engine, "cookware")) == {"ck-skillet", "ck-kettle", "ck-cafe", "ck-pan"}
        assert set(await find(engine, "footwear")) == {"fw-runner", "fw-sneaker", "fw-boot"}
        electronics = {p.slug for p in catalog.SEARCHABLE_ACME if category_id("electronics") in
                       {c.id for c in p.categories}}
        assert set(await find(engine, "electronics")) == electronics  # an ancestor's name counts too

    async def test_attribute_values(self, engine: SearchEngine) -> None:
        mesh = await find(engine, "mesh")
        assert mesh[0] == "fu-chair"
        assert set(mesh) == expected_keys("mesh")  # and "mech…" (the keyboard): a typo in a prefix, last
        assert await find(engine, "512") == ["lp-nimbus-book"]
        assert set(await find(engine, "dimmable")) == {"li-lamp", "li-bulb"}  # a true flag says its name
        found = await find(engine, "waterproof speaker")
        assert found[0] == "sp-sonique"  # both words (the flag and the name)
        assert set(found) == expected_keys("waterproof speaker")

    async def test_case_and_accents_do_not_matter(self, engine: SearchEngine) -> None:
        assert (await find(engine, "cafe creme"))[0] == "ck-cafe"
        assert (await find(engine, "CAFÉ CRÈME"))[0] == "ck-cafe"
        assert (await find(engine, "kettlecraft café"))[0] == "ck-cafe"


class TestFilters:
    @pytest.mark.parametrize("filters", [
        SearchFilters(category_id=category_id("electronics")),  # a root: every level below it
        SearchFilters(category_id=category_id("audio")),
        SearchFilters(category_id=category_id("computer-accessories")),
        SearchFilters(brand_ids=[brand_id("nimbus")]),
        SearchFilters(brand_ids=[brand_id("nimbus"), brand_id("oakline")]),
        SearchFilters(min_price=100_000, max_price=2_500_000),
        SearchFilters(min_price=99_900, max_price=99_900),
        SearchFilters(attributes={"color": ["black", "blue"]}),  # any value of a key
        SearchFilters(attributes={"color": ["black"], "connectivity": ["bluetooth"]}),  # every key
        SearchFilters(attributes={"color": ["BLACK"]}),  # values are folded
        SearchFilters(attributes={"waterproof": [True]}),
        SearchFilters(in_stock=True),
        SearchFilters(in_stock=False),
        SearchFilters(category_id=category_id("electronics"), brand_ids=[brand_id("nimbus")], max_price=1_000_000,
                      attributes={"color": ["black"]}, in_stock=True),
    ])
    async def test_the_filtered_results_are_those_a_brute_force_finds(self, engine: SearchEngine,
                                                                     filters: SearchFilters) -> None:
        for q in ("black", "nimbus", "wireless bluetooth"):
            result = await engine.search(ACME, query(q, filters=filters))
            assert set(keys(result)) == expected_keys(q, filters), q
            assert result.total == len(expected_keys(q, filters))

    async def test_a_filter_that_nothing_passes(self, engine: SearchEngine) -> None:
        result = await engine.search(ACME, query("nimbus", filters=SearchFilters(attributes={"color": ["purple"]})))
        assert result.hits == () and result.total == 0
        assert result.facets.categories == () and result.facets.brands == ()


class TestFacets:
    @pytest.mark.parametrize(("q", "filters"), [
        ("black", SearchFilters()),
        ("nimbus", SearchFilters()),
        ("wireless headphones", SearchFilters()),
        ("black", SearchFilters(category_id=category_id("electronics"))),
        ("nimbus", SearchFilters(min_price=50_000, max_price=5_000_000)),
    ])
    async def test_facet_counts_are_those_a_brute_force_counts(self, engine: SearchEngine, q: str,
                                                               filters: SearchFilters) -> None:
        result = await engine.search(ACME, query(q, filters=filters, limit=1))
        categories, brands, bands = catalog.facet_counts(catalog.expected(q, filters))
        assert {f.id: f.count for f in result.facets.categories} == categories
        assert {f.id: f.count for f in result.facets.brands} == brands
        assert [b.count for b in result.facets.price_bands] == bands
        assert [(b.label, b.min_amount, b.max_amount) for b in result.facets.price_bands] == price_bands()

    async def test_facets_name_their_values_and_list_the_biggest_first(self, engine: SearchEngine) -> None:
        facets = (await engine.search(ACME, query("nimbus"))).facets
        assert facets.brands[0].name == "Nimbus"
        electronics = next(f for f in facets.categories if f.id == category_id("electronics"))
        assert (electronics.name, facets.categories[0]) == ("Electronics", electronics)
        counts = [f.count for f in facets.categories]
        assert counts == sorted(counts, reverse=True)


class TestPagination:
    @pytest.mark.parametrize("sort", ["relevance", "price_asc", "rating", "newest"])
    async def test_pages_put_together_are_the_whole_result(self, engine: SearchEngine, sort: SearchSort) -> None:
        q = "nimbus black"
        whole = await engine.search(ACME, query(q, sort=sort, limit=100))
        assert whole.next_cursor is None
        pages: list[str] = []
        cursor = None
        for _ in range(20):
            page = await engine.search(ACME, query(q, sort=sort, limit=3, cursor=cursor))
            assert page.total == whole.total
            pages += keys(page)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert pages == keys(whole)
        assert len(set(pages)) == len(pages) == whole.total

    async def test_a_cursor_of_another_query_or_sort_is_refused(self, engine: SearchEngine) -> None:
        first = await engine.search(ACME, query("nimbus", limit=2))
        assert first.next_cursor is not None
        for other in (query("black", limit=2, cursor=first.next_cursor),
                      query("nimbus", limit=2, sort="price_asc", cursor=first.next_cursor),
                      query("nimbus", limit=2, filters=SearchFilters(in_stock=True), cursor=first.next_cursor)):
            with pytest.raises(InvalidCursor):
                await engine.search(ACME, other)
        with pytest.raises(InvalidCursor):
            await engine.search(GLOBEX, query("nimbus", limit=2, cursor=first.next_cursor))
        with pytest.raises(InvalidCursor):
            await engine.search(ACME, query("nimbus", cursor="not-a-cursor"))

    async def test_paging_stops_at_the_maximum_depth(self, engine: SearchEngine) -> None:
        fingerprint = prepare_search(ACME, query("nimbus")).fingerprint
        with pytest.raises(InvalidCursor):
            await engine.search(ACME, query("nimbus", limit=2, cursor=encode_cursor(fingerprint, MAX_DEPTH)))
        last = await engine.search(ACME, query("nimbus", limit=5, cursor=encode_cursor(fingerprint, MAX_DEPTH - 2)))
        assert last.hits == () and last.next_cursor is None
        assert last.total == len(expected_keys("nimbus"))


class TestSorts:
    async def test_by_price(self, engine: SearchEngine) -> None:
        cheapest = await engine.search(ACME, query("nimbus", sort="price_asc"))
        prices = [hit.price.amount for hit in cheapest.hits]
        assert prices == sorted(prices) and len(prices) == len(expected_keys("nimbus"))
        dearest = await engine.search(ACME, query("nimbus", sort="price_desc"))
        assert [hit.price.amount for hit in dearest.hits] == sorted(prices, reverse=True)

    async def test_by_rating_unrated_last(self, engine: SearchEngine) -> None:
        found = await find(engine, "nimbus", sort="rating")
        # Bayesian averages: 4.8 of 75 reviews (4.69) before 4.6 of 210 (4.56); 5.0 of one review is
        # only 3.33, after 3.8 of 150 (3.77); no review at all comes last.
        assert found == ["lp-nimbus-pro", "lp-nimbus-book", "ca-keyboard", "ph-nimbus-x5", "ca-mouse", "pa-case",
                         "ph-nimbus-lite", "pa-charger", "ca-hub"]

    async def test_newest_first(self, engine: SearchEngine) -> None:
        found = await find(engine, "nimbus", sort="newest")
        created = [catalog.PRODUCTS[k].created_at for k in found]
        assert created == sorted(created, reverse=True)

    async def test_every_word_still_comes_before_some_words(self, engine: SearchEngine) -> None:
        found = await find(engine, "nimbus black", sort="price_asc")
        every = {p.slug for p in catalog.SEARCHABLE_ACME if catalog.matches_every_word(p, "nimbus black")}
        assert set(found[:len(every)]) == every
        prices = [catalog.PRODUCTS[k].min_price for k in found[:len(every)]]
        assert prices == sorted(prices)


class TestHits:
    async def test_a_hit_carries_what_a_listing_shows(self, engine: SearchEngine) -> None:
        hit = (await engine.search(ACME, query("aurora wireless headphones", limit=1))).hits[0]
        assert (hit.product_id, hit.name, hit.slug) == (uid("hp-aurora"), "Aurora Wireless Headphones", "hp-aurora")
        assert (hit.price.amount, hit.price.currency) == (799_900, "INR")
        assert (hit.rating.average, hit.rating.count) == (4.5, 120)
        assert hit.image == "https://img.example/hp-aurora.jpg"
        assert hit.snippet == ("Over-ear <mark>headphones</mark> with active noise cancelling and 30 hours of "
                               "battery.")

    async def test_snippets_mark_matches_and_escape_html(self, engine: SearchEngine) -> None:
        hit = (await engine.search(ACME, query("party speaker", limit=1))).hits[0]
        assert hit.name == catalog.SCRIPT_NAME  # plain text: the client escapes it
        assert hit.snippet == ("Loud <mark>party</mark> <mark>speaker</mark>. Bass &amp; treble "
                               "&lt;b&gt;boost&lt;/b&gt; &quot;quoted&quot;")
        by_name = (await engine.search(ACME, query("alert", limit=1))).hits[0]
        assert by_name.snippet == "&lt;script&gt;<mark>alert</mark>(1)&lt;/script&gt; Party Speaker"

    async def test_snippets_mark_prefixes_and_typos(self, engine: SearchEngine) -> None:
        hit = (await engine.search(ACME, query("ergonomik sea", limit=1))).hits[0]
        assert catalog.key_of(hit.product_id) == "fu-chair"
        assert hit.snippet == "An <mark>ergonomic</mark> <mark>seat</mark> with lumbar support."


class TestQueryValidation:
    @pytest.mark.parametrize("bad", [
        SearchQuery(q=""), SearchQuery(q="   "), SearchQuery(q="x" * 201), SearchQuery(q="!!! ???"),
        SearchQuery(q="lamp", limit=0), SearchQuery(q="lamp", limit=101),
        SearchQuery(q="lamp", filters=SearchFilters(min_price=10, max_price=5)),
        SearchQuery(q="lamp", filters=SearchFilters(min_price=-1)),
        SearchQuery(q="lamp", filters=SearchFilters(attributes={"color": []})),
        SearchQuery(q="lamp", sort="cheapest"),  # type: ignore[arg-type]  # a client's value, unchecked
    ])
    async def test_a_query_that_cannot_run_is_refused(self, engine: SearchEngine, bad: SearchQuery) -> None:
        with pytest.raises(InvalidQuery):
            await engine.search(ACME, bad)

    async def test_a_query_of_the_longest_length_runs(self, engine: SearchEngine) -> None:
        q = "lumen desk lamp " + "x" * 184
        assert len(q) == 200
        assert (await find(engine, q))[0] == "li-lamp"


class TestSuggestions:
    async def test_one_or_two_letters_suggest(self, engine: SearchEngine) -> None:
        found = await engine.suggest(ACME, "he", 10)
        assert Suggestion("Headphones", "category", category_id("headphones")) in found
        assert found[0].kind == "category"
        assert Suggestion("Aurora Wireless Headphones", "product", uid("hp-aurora")) in found
        one = await engine.suggest(ACME, "n", 10)
        assert one[0] == Suggestion("Nimbus", "brand", brand_id("nimbus"))
        assert Suggestion("Northwind", "brand", brand_id("northwind")) in one

    async def test_kinds_brand_category_product(self, engine: SearchEngine) -> None:
        found = await engine.suggest(ACME, "kettle", 10)
        assert found[0] == Suggestion("Kettlecraft", "brand", brand_id("kettlecraft"))
        products = [s for s in found if s.kind == "product"]
        assert {s.id for s in products} == {uid("ck-skillet"), uid("ck-kettle"), uid("ck-pan")}
        assert Suggestion("Cookware", "category", category_id("cookware")) in await engine.suggest(ACME, "cook", 5)

    async def test_typos_are_forgiven_from_four_letters(self, engine: SearchEngine) -> None:
        found = await engine.suggest(ACME, "hedphon", 10)
        assert found[0] == Suggestion("Headphones", "category", category_id("headphones"))
        assert {s.id for s in found if s.kind == "product"} >= {uid("hp-aurora"), uid("hp-sonique-studio")}
        assert await engine.suggest(ACME, "hed", 10) == []  # three letters: no typo forgiven
        assert (await engine.suggest(ACME, "nimbsu", 3))[0] == Suggestion("Nimbus", "brand", brand_id("nimbus"))

    async def test_several_words(self, engine: SearchEngine) -> None:
        found = await engine.suggest(ACME, "aurora wireless h", 5)
        assert [s.id for s in found] == [uid("hp-aurora"), uid("hp-aurora-case")]
        assert await engine.suggest(ACME, "  ", 5) == []
        with pytest.raises(InvalidQuery):
            await engine.suggest(ACME, "x" * 201, 5)

    async def test_exact_completions_come_before_fuzzy_ones(self, engine: SearchEngine) -> None:
        found = await engine.suggest(ACME, "cast", 10)
        assert found[0] == Suggestion("Kettlecraft Cast Iron Skillet", "product", uid("ck-skillet"))
        assert Suggestion("Nimbus X5 Phone Case", "product", uid("pa-case")) in found[1:]


class TestTenants:
    async def test_search_counts_and_facets_stay_within_the_tenant(self, engine: SearchEngine) -> None:
        acme = await engine.search(ACME, query("wireless headphones"))
        globex = await engine.search(GLOBEX, query("wireless headphones"))
        assert "g-headphones" not in keys(acme)
        assert keys(globex) == ["g-headphones"]
        assert {f.id for f in globex.facets.categories} == {category_id("globex-audio"),
                                                             category_id("globex-headphones")}
        assert {f.id for f in globex.facets.brands} == {brand_id("globex")}
        assert await engine.count(ACME) == len(catalog.SEARCHABLE_ACME)
        assert await engine.count(GLOBEX) == len(catalog.GLOBEX_PRODUCTS)
        assert await engine.count("nobody") == 0
        assert await find(engine, "globex") == []

    async def test_suggestions_stay_within_the_tenant(self, engine: SearchEngine) -> None:
        assert await engine.suggest(ACME, "globex", 5) == []
        assert await engine.suggest(GLOBEX, "auro", 5) == [
            Suggestion("Aurora", "brand", brand_id("globex-aurora")),
            Suggestion("Aurora Borealis Poster", "product", uid("g-poster"))]
        assert Suggestion("Headphones", "category", category_id("globex-headphones")) in \
            await engine.suggest(GLOBEX, "head", 5)


class TestWrites:
    async def test_deleting_removes_from_results_counts_and_facets(self, fresh: Fresh) -> None:
        engine, tenant = fresh.engine, fresh.acme
        await engine.delete(tenant, [uid("hp-aurora"), uid("never-indexed")])
        result = await engine.search(tenant, query("aurora"))
        assert keys(result) == ["hp-aurora-case"]
        assert {f.id: f.count for f in result.facets.brands} == {brand_id("aurora"): 1}
        assert await engine.count(tenant) == len(catalog.SEARCHABLE_ACME) - 1
        await engine.upsert(tenant, [catalog.revised("hp-aurora", hours=1)])  # a late update: stays deleted
        assert await find(engine, "aurora", tenant) == ["hp-aurora-case"]
        assert await engine.set_rating(tenant, uid("hp-aurora"), 5.0, 10, catalog.T0 + dt.timedelta(days=999)) is False
        assert await engine.count(fresh.globex) == len(catalog.GLOBEX_PRODUCTS)

    async def test_an_older_update_is_ignored_and_a_newer_applied(self, fresh: Fresh) -> None:
        engine, tenant = fresh.engine, fresh.acme
        await engine.upsert(tenant, [catalog.revised("li-lamp", hours=-1, name="Lumen Reading Light")])
        await engine.upsert(tenant, [catalog.revised("li-lamp", hours=0, name="Lumen Reading Light")])  # same version
        assert await find(engine, "reading", tenant) == []
        assert (await find(engine, "lumen desk lamp", tenant))[0] == "li-lamp"
        await engine.upsert(tenant, [catalog.revised("li-lamp", hours=2, name="Lumen Reading Light", min_price=1_000),
                                     catalog.revised("li-lamp", hours=1, name="Lumen Bedside Light")])
        hit = (await engine.search(tenant, query("reading"))).hits
        assert [(h.name, h.price.amount, h.rating.count) for h in hit] == [("Lumen Reading Light", 1_000, 140)]
        assert await find(engine, "bedside", tenant) == []
        assert await engine.count(tenant) == len(catalog.SEARCHABLE_ACME)

    async def test_a_new_word_is_found_with_typos_and_as_a_prefix_at_once(self, fresh: Fresh) -> None:
        engine, tenant = fresh.engine, fresh.acme
        assert await find(engine, "nightstnad", tenant) == []  # searched before any product has the word
        assert await find(engine, "nightst", tenant) == []
        await engine.upsert(tenant, [catalog.revised("li-lamp", hours=1, name="Lumen Nightstand Lamp")])
        assert await find(engine, "nightstnad", tenant) == ["li-lamp"]
        assert await find(engine, "nightst", tenant) == ["li-lamp"]
        assert Suggestion("Lumen Nightstand Lamp", "product", uid("li-lamp")) in \
            await engine.suggest(tenant, "nights", 5)

    async def test_a_rating_reorders_equal_matches_and_an_older_one_is_ignored(self, fresh: Fresh) -> None:
        engine, tenant = fresh.engine, fresh.acme
        later = catalog.T0 + dt.timedelta(days=100)
        assert await engine.set_rating(tenant, uid("twin-a"), 3.0, 2, later) is True
        assert await engine.set_rating(tenant, uid("twin-b"), 4.8, 200, later) is True
        assert (await find(engine, "glowstone lantern", tenant))[:2] == ["twin-b", "twin-a"]
        assert await engine.set_rating(tenant, uid("twin-a"), 5.0, 500, later + dt.timedelta(hours=1)) is True
        assert (await find(engine, "glowstone lantern", tenant))[:2] == ["twin-a", "twin-b"]
        assert await engine.set_rating(tenant, uid("twin-a"), 1.0, 900, later) is False  # older
        assert await engine.set_rating(tenant, uid("twin-a"), 1.0, 900, later + dt.timedelta(hours=1)) is False
        assert await engine.set_rating(tenant, uid("nobody"), 4.0, 1, later) is False
        assert await engine.set_rating(fresh.globex, uid("twin-a"), 1.0, 1, later + dt.timedelta(days=1)) is False
        hits = (await engine.search(tenant, query("glowstone lantern"))).hits
        assert (hits[0].rating.average, hits[0].rating.count) == (5.0, 500)
        # a product update keeps the rating, which has its own events
        await engine.upsert(tenant, [catalog.revised("twin-a", hours=5, rating_average=None, rating_count=0)])
        hits = (await engine.search(tenant, query("glowstone lantern"))).hits
        first = hits[0]
        assert (catalog.key_of(first.product_id), first.rating.average, first.rating.count) == ("twin-a", 5.0, 500)

    async def test_a_product_no_longer_active_is_not_found_until_it_is_again(self, fresh: Fresh) -> None:
        engine, tenant = fresh.engine, fresh.acme
        await engine.upsert(tenant, [catalog.revised("hp-aurora", hours=1, status="archived")])
        assert "hp-aurora" not in await find(engine, "aurora", tenant)
        assert await engine.count(tenant) == len(catalog.SEARCHABLE_ACME) - 1
        assert Suggestion("Aurora Wireless Headphones", "product", uid("hp-aurora")) not in \
            await engine.suggest(tenant, "aurora", 10)
        assert await engine.set_rating(tenant, uid("hp-aurora"), 2.0, 3, catalog.T0 + dt.timedelta(days=500)) is True
        await engine.upsert(tenant, [catalog.revised("hp-aurora", hours=2)])
        hits = (await engine.search(tenant, query("aurora wireless headphones"))).hits
        assert (catalog.key_of(hits[0].product_id), hits[0].rating.average) == ("hp-aurora", 2.0)
        assert await find(engine, "prototype", tenant) == []  # a draft from the start

    async def test_clear_and_rebuild_give_the_same_results(self, fresh: Fresh) -> None:
        engine, tenant = fresh.engine, fresh.acme
        probes = [query("wireless head"), query("nimbus black", sort="price_asc"), query("chiar"),
                  query("kettlecraft", filters=SearchFilters(max_price=500_000))]
        before = [await engine.search(tenant, probe) for probe in probes]
        suggested = await engine.suggest(tenant, "hedphon", 5)
        await engine.clear(tenant)
        assert await engine.count(tenant) == 0
        assert (await engine.search(tenant, query("nimbus"))).total == 0
        assert await engine.suggest(tenant, "nimbus", 5) == []
        assert await engine.count(fresh.globex) == len(catalog.GLOBEX_PRODUCTS)
        for item in catalog.ACME_PRODUCTS:  # one event at a time, in another order
            await engine.upsert(tenant, [item])
        after = [await engine.search(tenant, probe) for probe in probes]
        assert [(keys(r), r.total, r.facets) for r in after] == [(keys(r), r.total, r.facets) for r in before]
        assert await engine.suggest(tenant, "hedphon", 5) == suggested

    async def test_a_batch_with_one_product_twice_keeps_the_newest(self, fresh: Fresh) -> None:
        engine, tenant = fresh.engine, fresh.acme
        await engine.upsert(tenant, [catalog.revised("ha-cap", hours=3, name="Northwind Trucker Cap"),
                                     catalog.revised("ha-cap", hours=2, name="Northwind Dad Cap")])
        assert await find(engine, "trucker", tenant) == ["ha-cap"]
        assert await find(engine, "dad", tenant) == []

    async def test_the_index_survives_a_restart(self, fresh: Fresh) -> None:
        await fresh.engine.close()
        reopened = await fresh.kind.open(fresh.directory)
        try:
            assert await reopened.count(fresh.acme) == len(catalog.SEARCHABLE_ACME)
            assert (await find(reopened, "chiar", fresh.acme))[0] == "fu-chair"
        finally:
            await reopened.close()


class TestTantivyExpansion:
    async def test_a_word_that_stands_for_many_terms_matches_the_same(self, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
        """tantivy looks up the terms a word expands to one by one, but walks a field's dictionary
        for a word with too many (a short prefix): both ways find and rank the same."""
        engine = TantivySearchEngine(tmp_path / "index")
        await load(engine)
        try:
            await self._same_both_ways(engine, monkeypatch)
        finally:
            await engine.close()

    @staticmethod
    async def _same_both_ways(engine: SearchEngine, monkeypatch: pytest.MonkeyPatch) -> None:
        probes = [query("wireless head"), query("hedphones"), query("nimbus black", sort="price_asc"), query("ch")]
        looked_up = [await engine.search(ACME, probe) for probe in probes]
        suggested = await engine.suggest(ACME, "hedphon", 5)
        monkeypatch.setattr(tantivy_engine, "_MAX_EXPANDED", 0)
        assert [await engine.search(ACME, probe) for probe in probes] == looked_up
        assert await engine.suggest(ACME, "hedphon", 5) == suggested
