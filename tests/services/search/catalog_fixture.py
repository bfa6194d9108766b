"""A small hand-made catalog for the search engines' relevance suite.

Two tenants: ACME has the catalog below (a three-level category tree, brands, attributes, prices
across every price band, ratings); GLOBEX has a few products of its own that share words, a
category name and a brand name with ACME's, so that a leak between tenants would show.
Ids are derived from the keys (uuid5), so a test names products by key.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from amazonlite.services.search.engine.analysis import (
    QueryWord,
    analyze,
    attribute_texts,
    attribute_value_key,
    query_words,
)
from amazonlite.services.search.engine.base import (
    MAX_QUERY_WORDS,
    CategoryRef,
    IndexedProduct,
    SearchFilters,
    price_bands,
)

ACME = "acme"
GLOBEX = "globex"
_NAMESPACE = uuid.UUID("5d8f0a52-54a6-4bd3-9a57-2f3f1c1b9e10")
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def uid(key: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, key)


# Categories: key → (name, parent key)
_CATEGORY_TREE: dict[str, tuple[str, str | None]] = {
    "electronics": ("Electronics", None),
    "audio": ("Audio", "electronics"),
    "headphones": ("Headphones", "audio"),
    "speakers": ("Speakers", "audio"),
    "phones": ("Phones", "electronics"),
    "phone-accessories": ("Phone Accessories", "phones"),
    "computers": ("Computers", "electronics"),
    "laptops": ("Laptops", "computers"),
    "computer-accessories": ("Computer Accessories", "computers"),
    "home": ("Home & Kitchen", None),
    "cookware": ("Cookware", "home"),
    "furniture": ("Furniture", "home"),
    "lighting": ("Lighting", "home"),
    "fashion": ("Fashion", None),
    "footwear": ("Footwear", "fashion"),
    "hats": ("Hats", "fashion"),
    "clothing": ("Clothing", "fashion"),
    # GLOBEX's own tree: a "Headphones" of its own (another id)
    "globex-audio": ("Sound", None),
    "globex-headphones": ("Headphones", "globex-audio"),
    "globex-kitchen": ("Kitchen", None),
}

BRANDS: dict[str, str] = {
    "aurora": "Aurora", "sonique": "Sonique", "nimbus": "Nimbus", "kettlecraft": "Kettlecraft",
    "oakline": "Oakline", "lumen": "Lumen", "stride": "Stride", "northwind": "Northwind",
    "globex-aurora": "Aurora",  # GLOBEX's brand of the same name
    "globex": "Globex",
}


def category_path(key: str) -> tuple[CategoryRef, ...]:
    path: list[CategoryRef] = []
    current: str | None = key
    while current is not None:
        name, parent = _CATEGORY_TREE[current]
        path.insert(0, CategoryRef(uid(f"category:{current}"), name))
        current = parent
    return tuple(path)


def category_id(key: str) -> uuid.UUID:
    return uid(f"category:{key}")


def brand_id(key: str) -> uuid.UUID:
    return uid(f"brand:{key}")


def product(key: str, name: str, *, category: str | None, brand: str | None, price: int,
            description: str = "", attributes: Mapping[str, Any] | None = None, rating: tuple[float, int] | None = None,
            in_stock: bool | None = True, age_days: int = 0, status: str = "active",
            updated_at: dt.datetime | None = None) -> IndexedProduct:
    path = category_path(category) if category else ()
    created = T0 + dt.timedelta(days=age_days)
    return IndexedProduct(
        product_id=uid(key), name=name, slug=key, description=description, status=status,
        min_price=price, currency="INR", created_at=created, updated_at=updated_at or created + dt.timedelta(hours=1),
        brand_id=brand_id(brand) if brand else None, brand_name=BRANDS[brand] if brand else None,
        category_id=path[-1].id if path else None, category_name=path[-1].name if path else None,
        category_path=path, attributes=dict(attributes or {}), image=f"https://img.example/{key}.jpg",
        in_stock=in_stock, rating_average=rating[0] if rating else None, rating_count=rating[1] if rating else 0,
    )


SCRIPT_NAME = "<script>alert(1)</script> Party Speaker"
SCRIPT_DESCRIPTION = 'Loud party speaker. Bass & treble <b>boost</b> "quoted"'

ACME_PRODUCTS: tuple[IndexedProduct, ...] = (
    # Electronics > Audio > Headphones
    product("hp-aurora", "Aurora Wireless Headphones", category="headphones", brand="aurora", price=799_900,
            description="Over-ear headphones with active noise cancelling and 30 hours of battery.",
            attributes={"color": ["black", "silver"], "connectivity": "bluetooth", "noise_cancelling": True},
            rating=(4.5, 120), age_days=30),
    product("hp-aurora-case", "Aurora Wireless Headphones Case", category="headphones", brand="aurora",
            price=99_900, description="A hard shell carrying case for Aurora headphones.",
            attributes={"color": "black"}, rating=(4.0, 10), age_days=31),
    product("hp-sonique-studio", "Sonique Studio Headphones", category="headphones", brand="sonique",
            price=450_000, description="Closed-back studio monitors with a detachable wire.",
            attributes={"color": "white", "connectivity": "wired"}, rating=(4.7, 300), age_days=10),
    product("hp-sonique-buds", "Sonique Wireless Earbuds", category="headphones", brand="sonique", price=299_900,
            description="True wireless earbuds for running, sweat resistant.",
            attributes={"color": ["white", "blue"], "connectivity": "bluetooth", "waterproof": True},
            rating=(4.1, 45), age_days=12, in_stock=False),
    # Electronics > Audio > Speakers
    product("sp-sonique", "Sonique Portable Speaker", category="speakers", brand="sonique", price=349_900,
            description="A waterproof bluetooth speaker for the beach.",
            attributes={"color": "blue", "connectivity": "bluetooth", "waterproof": True}, rating=(3.9, 80),
            age_days=20),
    product("sp-script", SCRIPT_NAME, category="speakers", brand=None, price=149_900,
            description=SCRIPT_DESCRIPTION, attributes={"color": "red"}, age_days=21),
    # Electronics > Phones (> Phone Accessories)
    product("ph-nimbus-x5", "Nimbus X5 Smartphone", category="phones", brand="nimbus", price=2_499_900,
            description="A 6.1 inch smartphone with a triple camera.",
            attributes={"color": ["black", "green"], "storage_gb": 128}, rating=(4.4, 900), age_days=40),
    product("ph-nimbus-lite", "Nimbus Lite Smartphone", category="phones", brand="nimbus", price=1_299_900,
            description="An affordable smartphone with a big battery.",
            attributes={"color": "blue", "storage_gb": 64}, rating=(3.8, 150), age_days=41, in_stock=None),
    product("pa-case", "Nimbus X5 Phone Case", category="phone-accessories", brand="nimbus", price=49_900,
            description="Slim silicone case that protects your phone.",
            attributes={"color": "black", "material": "silicone"}, rating=(4.2, 60), age_days=42),
    product("pa-charger", "Nimbus Fast Charger", category="phone-accessories", brand="nimbus", price=129_900,
            description="A 30 W USB-C wall charger.", attributes={"wattage": 30}, rating=(5.0, 1), age_days=43),
    product("pa-cable", "Braided USB-C Cable", category="phone-accessories", brand=None, price=29_900,
            description="Two metres of braided cable, for Sonique speakers too.", attributes={"length_m": 2},
            age_days=44),
    # Electronics > Computers > Laptops / Computer Accessories
    product("lp-nimbus-book", "Nimbus Book 14 Laptop", category="laptops", brand="nimbus", price=6_499_900,
            description="A light laptop for work and travel.",
            attributes={"color": "silver", "ram_gb": 16, "storage_gb": 512}, rating=(4.6, 210), age_days=5),
    product("lp-nimbus-pro", "Nimbus Book Pro 16 Laptop", category="laptops", brand="nimbus", price=12_999_900,
            description="A powerful laptop for creative work.", attributes={"color": "grey", "ram_gb": 32},
            rating=(4.8, 75), age_days=6, in_stock=False),
    product("ca-mouse", "Nimbus Wireless Mouse", category="computer-accessories", brand="nimbus", price=99_900,
            description="An ergonomic mouse that fits the hand.",
            attributes={"color": "black", "connectivity": "bluetooth"}, rating=(4.3, 400), age_days=7),
    product("ca-keyboard", "Nimbus Mechanical Keyboard", category="computer-accessories", brand="nimbus",
            price=549_900, description="Tactile switches and a metal frame.",
            attributes={"color": "black", "switches": "brown"}, rating=(4.5, 95), age_days=8),
    product("ca-hub", "Nimbus USB-C Hub", category="computer-accessories", brand="nimbus", price=259_900,
            description="Four ports from one.", attributes={"color": "grey"}, age_days=4),
    product("ca-mousepad", "Large Desk Mousepad", category="computer-accessories", brand=None, price=39_900,
            description="Covers half a desk.", attributes={"color": "grey"}, age_days=9),
    # Home & Kitchen > Cookware
    product("ck-skillet", "Kettlecraft Cast Iron Skillet", category="cookware", brand="kettlecraft", price=199_900,
            description="Pre-seasoned skillet for searing and baking.",
            attributes={"material": "iron", "diameter_cm": 26}, rating=(4.9, 500), age_days=50),
    product("ck-kettle", "Kettlecraft Electric Kettle", category="cookware", brand="kettlecraft", price=249_900,
            description="Boils a litre and a half in four minutes.",
            attributes={"material": "stainless steel", "capacity_l": 1.5}, rating=(4.0, 30), age_days=51),
    product("ck-cafe", "Café Crème Espresso Maker", category="cookware", brand="kettlecraft", price=899_900,
            description="A stovetop espresso maker.", attributes={"material": "aluminium"}, rating=(4.6, 40),
            age_days=52),
    product("ck-pan", "Kettlecraft Nonstick Frying Pan", category="cookware", brand="kettlecraft", price=149_900,
            description="Eggs slide off.", attributes={"material": "aluminium", "diameter_cm": 28},
            rating=(3.5, 20), age_days=53),
    # Home & Kitchen > Furniture / Lighting
    product("fu-chair", "Oakline Office Chair", category="furniture", brand="oakline", price=1_199_900,
            description="An ergonomic seat with lumbar support.", attributes={"color": "black", "material": "mesh"},
            rating=(4.2, 88), age_days=60),
    product("fu-desk", "Oakline Standing Desk", category="furniture", brand="oakline", price=2_999_900,
            description="Rises to standing height at a touch.", attributes={"color": "oak", "material": "wood"},
            age_days=61),
    product("li-lamp", "Lumen Desk Lamp", category="lighting", brand="lumen", price=189_900,
            description="An LED light with three brightness levels.",
            attributes={"color": "white", "dimmable": True}, rating=(4.4, 140), age_days=62),
    product("li-bulb", "Lumen Smart Bulb", category="lighting", brand="lumen", price=79_900,
            description="Changes colour from your phone.", attributes={"dimmable": True, "connectivity": "wifi"},
            rating=(3.7, 25), age_days=63, in_stock=None),
    # Two products that differ only by id: ratings decide their order
    product("twin-a", "Glowstone Camping Lantern", category="lighting", brand="lumen", price=159_900,
            description="Rechargeable lantern.", age_days=64),
    product("twin-b", "Glowstone Camping Lantern", category="lighting", brand="lumen", price=159_900,
            description="Rechargeable lantern.", age_days=64),
    # Fashion > Footwear / Hats / Clothing
    product("fw-runner", "Stride Trail Running Shoes", category="footwear", brand="stride", price=459_900,
            description="Grippy soles for muddy trails.",
            attributes={"color": ["black", "orange"], "sizes": ["UK 8", "UK 9", "UK 10"]}, rating=(4.5, 230),
            age_days=70),
    product("fw-sneaker", "Stride Canvas Sneakers", category="footwear", brand="stride", price=249_900,
            description="Everyday canvas shoes.", attributes={"color": "white", "sizes": ["UK 7", "UK 8"]},
            rating=(4.0, 60), age_days=71),
    product("fw-boot", "Northwind Leather Boots", category="footwear", brand="northwind", price=899_900,
            description="Hand-stitched boots.", attributes={"color": "brown", "material": "leather"},
            rating=(4.7, 35), age_days=72),
    product("ha-cap", "Northwind Baseball Cap", category="hats", brand="northwind", price=59_900,
            description="Adjustable strap.", attributes={"color": "navy"}, age_days=73),
    product("ha-beanie", "Northwind Wool Beanie", category="hats", brand="northwind", price=69_900,
            description="Warm and soft.", attributes={"color": "grey", "material": "wool"}, age_days=74),
    product("cl-jacket", "Northwind Rain Jacket", category="clothing", brand="northwind", price=549_900,
            description="Sealed seams keep the rain out.", attributes={"color": "yellow", "waterproof": True},
            rating=(4.3, 55), age_days=75),
    product("cl-tee", "Stride Running T-Shirt", category="clothing", brand="stride", price=99_900,
            description="Light and quick to dry.", attributes={"color": "orange"}, age_days=76),
    product("no-category", "Gift Card", category=None, brand=None, price=100_000,
            description="Spend it on anything.", age_days=77),
    # Not active: never found
    product("draft-phone", "Nimbus Prototype Phone", category="phones", brand="nimbus", price=3_999_900,
            description="Not announced yet.", status="draft", age_days=78),
)

GLOBEX_PRODUCTS: tuple[IndexedProduct, ...] = (
    product("g-headphones", "Globex Wireless Headphones", category="globex-headphones", brand="globex",
            price=199_900, description="Budget wireless headphones.", attributes={"color": "black"},
            rating=(3.9, 12)),
    product("g-poster", "Aurora Borealis Poster", category="globex-audio", brand="globex-aurora", price=19_900,
            description="Northern lights print."),
    product("g-pan", "Globex Cast Iron Pan", category="globex-kitchen", brand="globex", price=99_900,
            description="Heavy pan.", attributes={"material": "iron"}),
)

PRODUCTS: dict[str, IndexedProduct] = {p.slug: p for p in (*ACME_PRODUCTS, *GLOBEX_PRODUCTS)}
_KEYS = {p.product_id: p.slug for p in PRODUCTS.values()}
SEARCHABLE_ACME = tuple(p for p in ACME_PRODUCTS if p.searchable)


def key_of(product_id: uuid.UUID) -> str:
    return _KEYS[product_id]


def revised(key: str, *, hours: float, **changes: Any) -> IndexedProduct:
    """The fixture product as a later (or, with negative hours, earlier) event carries it."""
    original = PRODUCTS[key]
    return dataclasses.replace(original, updated_at=original.updated_at + dt.timedelta(hours=hours), **changes)


# Brute force: what the engines should answer, computed the slow way ------------------------------

def _terms(item: IndexedProduct) -> set[str]:
    texts = [item.name, item.brand_name or "", item.description, *(c.name for c in item.categories),
             *attribute_texts(item.attributes)]
    return {term for text in texts for term in analyze(text)}


def _words(q: str) -> Sequence[QueryWord]:
    return query_words(q, limit=MAX_QUERY_WORDS)


def matches_every_word(item: IndexedProduct, q: str) -> bool:
    terms = _terms(item)
    return all(any(word.match(term) is not None for term in terms) for word in _words(q))


def matches_some_word(item: IndexedProduct, q: str) -> bool:
    terms = _terms(item)
    return any(word.match(term) is not None for word in _words(q) for term in terms)


def _attribute_values(item: IndexedProduct, key: str) -> list[Any]:
    value = item.attributes.get(key)
    return [] if value is None else value if isinstance(value, list) else [value]


def passes(item: IndexedProduct, filters: SearchFilters) -> bool:
    if filters.category_id is not None and filters.category_id not in {c.id for c in item.categories}:
        return False
    if filters.brand_ids and item.brand_id not in filters.brand_ids:
        return False
    if filters.min_price is not None and item.min_price < filters.min_price:
        return False
    if filters.max_price is not None and item.min_price > filters.max_price:
        return False
    for key, accepted in filters.attributes.items():
        had = {attribute_value_key(key, value) for value in _attribute_values(item, key)}
        if not had & {attribute_value_key(key, value) for value in accepted}:
            return False
    return filters.in_stock is None or item.in_stock is filters.in_stock


def expected(q: str, filters: SearchFilters | None = None, *, products: Sequence[IndexedProduct] = SEARCHABLE_ACME,
             ) -> list[IndexedProduct]:
    """The products a query should find: those with some word of q that pass every filter."""
    filters = filters or SearchFilters()
    return [p for p in products if matches_some_word(p, q) and passes(p, filters)]


def facet_counts(found: Sequence[IndexedProduct]) -> tuple[dict[uuid.UUID, int], dict[uuid.UUID, int], list[int]]:
    """Products per category (at every level of the path), per brand, and per price band."""
    categories: dict[uuid.UUID, int] = {}
    brands: dict[uuid.UUID, int] = {}
    for item in found:
        for category in item.categories:
            categories[category.id] = categories.get(category.id, 0) + 1
        if item.brand_id is not None:
            brands[item.brand_id] = brands.get(item.brand_id, 0) + 1
    bands = [sum(1 for item in found if low <= item.min_price and (high is None or item.min_price < high))
             for _, low, high in price_bands()]
    return categories, brands, bands
