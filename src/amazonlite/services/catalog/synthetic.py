"""A synthetic catalog for benchmarks (`amazonlite seed --products N`): plausible names, brands,
categories with attribute definitions, attributes, variants, prices and descriptions.

Deterministic per product number: product 42 is the same product whatever N is and on every run (its
SKUs start `SYN0000042-`), so seeding again updates the products instead of adding more. Plain data
and the standard library; prices in rupees here, stored in paise.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

CURRENCY = "INR"
MEDIA_BASE = "https://images.amazonlite.dev/synthetic"


def text(key: str, label: str, *, required: bool = False) -> dict[str, Any]:
    return {"key": key, "label": label, "type": "text", "options": [], "multiple": False, "required": required}


def number(key: str, label: str) -> dict[str, Any]:
    return {"key": key, "label": label, "type": "number", "options": [], "multiple": False, "required": False}


def boolean(key: str, label: str) -> dict[str, Any]:
    return {"key": key, "label": label, "type": "boolean", "options": [], "multiple": False, "required": False}


def one_of(key: str, label: str, *options: str) -> dict[str, Any]:
    return {"key": key, "label": label, "type": "one_of", "options": list(options), "multiple": False,
            "required": False}


Attributes = Callable[[random.Random], dict[str, Any]]


@dataclass(frozen=True)
class Leaf:
    """A category products are filed under: how its products are named, described, varied and priced."""

    path: tuple[str, ...]
    definitions: tuple[dict[str, Any], ...]
    nouns: tuple[str, ...]
    attributes: Attributes
    axis: tuple[str, tuple[str, ...]]  # the option its variants differ by, and its values
    rupees: tuple[int, int]
    blurb: str


LANGUAGES = ("English", "Hindi", "Tamil", "Bengali", "Marathi")
FIRST = ("Meera", "Arjun", "Kavya", "Rohan", "Ananya", "Vikram", "Isha", "Farhan", "Nikhil", "Sara", "Dev", "Leela")
LAST = ("Varghese", "Sethi", "Iyer", "Rao", "Kapoor", "Qureshi", "Menon", "Bose", "Pillai", "Das", "Mehta", "Nair")

LEAVES: tuple[Leaf, ...] = (
    Leaf(("Electronics", "Phones"),
         (number("screen_inches", "Screen (inches)"), one_of("network", "Network", "4G", "5G"),
          boolean("dual_sim", "Dual SIM"), number("battery_mah", "Battery (mAh)")),
         ("Smartphone", "Phone", "5G Phone", "Mini Phone"),
         lambda r: {"screen_inches": r.choice((6.1, 6.5, 6.7, 6.8)), "network": r.choice(("4G", "5G")),
                    "dual_sim": r.random() < 0.7, "battery_mah": r.choice((4000, 4500, 5000, 6000))},
         ("storage", ("64 GB", "128 GB", "256 GB", "512 GB")), (7_999, 139_999),
         "A {adj} phone with a bright display, an all-day battery and a camera that keeps up."),
    Leaf(("Electronics", "Laptops"),
         (one_of("processor", "Processor", "Core i5", "Core i7", "Ryzen 5", "Ryzen 7", "M-series"),
          number("ram_gb", "Memory (GB)"), number("weight_kg", "Weight (kg)"),
          one_of("os", "Operating system", "Windows 11", "Linux", "ChromeOS")),
         ("Laptop", "Ultrabook", "Notebook", "Gaming Laptop"),
         lambda r: {"processor": r.choice(("Core i5", "Core i7", "Ryzen 5", "Ryzen 7")),
                    "ram_gb": r.choice((8, 16, 32)), "weight_kg": r.choice((1.2, 1.4, 1.8, 2.3)),
                    "os": r.choice(("Windows 11", "Linux", "ChromeOS"))},
         ("storage", ("256 GB SSD", "512 GB SSD", "1 TB SSD")), (29_990, 219_990),
         "A {adj} laptop for work and play, with a sharp screen and a keyboard you will like."),
    Leaf(("Electronics", "Audio", "Headphones"),
         (one_of("fit", "Fit", "Over-ear", "On-ear", "In-ear"), boolean("wireless", "Wireless"),
          number("battery_hours", "Battery (hours)"), boolean("noise_cancelling", "Noise cancelling")),
         ("Headphones", "Earbuds", "Headset", "Wireless Headphones"),
         lambda r: {"fit": r.choice(("Over-ear", "On-ear", "In-ear")), "wireless": r.random() < 0.8,
                    "battery_hours": r.choice((20, 30, 40, 60)), "noise_cancelling": r.random() < 0.5},
         ("colour", ("Black", "White", "Blue", "Rose")), (999, 34_999),
         "{adj} sound with deep bass and clear highs, comfortable for hours of listening."),
    Leaf(("Electronics", "Cameras"),
         (number("megapixels", "Megapixels"), one_of("sensor", "Sensor", "Full frame", "APS-C", "Micro Four Thirds")),
         ("Mirrorless Camera", "Camera", "Action Camera", "Vlogging Camera"),
         lambda r: {"megapixels": r.choice((20, 24, 33, 45)),
                    "sensor": r.choice(("Full frame", "APS-C", "Micro Four Thirds"))},
         ("kit", ("Body only", "With 18-55 mm", "With 24-105 mm")), (14_999, 249_999),
         "A {adj} camera that makes sharp pictures and steady video easy."),
    Leaf(("Home & Kitchen", "Cookware"),
         (one_of("material", "Material", "Stainless steel", "Cast iron", "Hard anodised", "Ceramic"),
          boolean("induction", "Works on induction"), number("capacity_l", "Capacity (litres)")),
         ("Kadai", "Frying Pan", "Pressure Cooker", "Saucepan", "Tawa"),
         lambda r: {"material": r.choice(("Stainless steel", "Cast iron", "Hard anodised", "Ceramic")),
                    "induction": r.random() < 0.6, "capacity_l": r.choice((1.5, 2, 3, 5))},
         ("size", ("20 cm", "24 cm", "28 cm")), (499, 7_999),
         "A {adj} pan that heats evenly and cleans up in a minute."),
    Leaf(("Home & Kitchen", "Furniture"),
         (one_of("material", "Material", "Sheesham wood", "Engineered wood", "Metal", "Cane"),
          boolean("assembly_required", "Assembly required")),
         ("Bookshelf", "Coffee Table", "Study Chair", "Shoe Rack", "Bedside Table"),
         lambda r: {"material": r.choice(("Sheesham wood", "Engineered wood", "Metal", "Cane")),
                    "assembly_required": r.random() < 0.5},
         ("finish", ("Walnut", "Teak", "White", "Black")), (1_999, 39_999),
         "A {adj} piece that fits small homes and lasts for years."),
    Leaf(("Fashion", "Shirts"),
         (one_of("fabric", "Fabric", "Cotton", "Linen", "Polyester blend"),
          one_of("fit", "Fit", "Slim", "Regular", "Relaxed"), one_of("sleeve", "Sleeve", "Full", "Half")),
         ("Shirt", "Oxford Shirt", "Linen Shirt", "Kurta"),
         lambda r: {"fabric": r.choice(("Cotton", "Linen", "Polyester blend")),
                    "fit": r.choice(("Slim", "Regular", "Relaxed")), "sleeve": r.choice(("Full", "Half"))},
         ("size", ("S", "M", "L", "XL")), (499, 3_999),
         "A {adj} shirt in a breathable fabric, easy to wear all day."),
    Leaf(("Fashion", "Shoes"),
         (one_of("material", "Material", "Mesh", "Leather", "Canvas"), one_of("sole", "Sole", "Rubber", "EVA")),
         ("Running Shoes", "Sneakers", "Trail Runners", "Loafers"),
         lambda r: {"material": r.choice(("Mesh", "Leather", "Canvas")), "sole": r.choice(("Rubber", "EVA"))},
         ("size", ("UK 6", "UK 7", "UK 8", "UK 9", "UK 10")), (999, 8_999),
         "{adj} shoes with a cushioned sole and a grip you can trust."),
    Leaf(("Books", "Fiction"),
         (text("author", "Author", required=True), number("pages", "Pages"),
          one_of("language", "Language", *LANGUAGES), text("genre", "Genre")),
         ("Novel", "Stories", "Mystery", "Saga", "Romance"),
         lambda r: {"author": f"{r.choice(FIRST)} {r.choice(LAST)}", "pages": r.randrange(120, 720),
                    "language": r.choice(LANGUAGES), "genre": r.choice(("Literary", "Thriller", "Romance", "Fantasy"))},
         ("format", ("Paperback", "Hardcover")), (199, 999),
         "A {adj} story of families, cities and the choices that shape them."),
    Leaf(("Books", "Non-fiction"),
         (text("author", "Author", required=True), number("pages", "Pages"),
          one_of("language", "Language", *LANGUAGES), text("genre", "Genre")),
         ("Guide", "Handbook", "History", "Cookbook", "Primer"),
         lambda r: {"author": f"{r.choice(FIRST)} {r.choice(LAST)}", "pages": r.randrange(120, 720),
                    "language": r.choice(LANGUAGES), "genre": r.choice(("Science", "History", "Cookery", "Finance"))},
         ("format", ("Paperback", "Hardcover")), (249, 1_499),
         "A {adj} and practical book by someone who has done the work."),
    Leaf(("Sports & Fitness", "Yoga"),
         (one_of("material", "Material", "TPE", "PVC", "Natural rubber", "Cotton"),
          number("thickness_mm", "Thickness (mm)")),
         ("Yoga Mat", "Yoga Block", "Yoga Strap", "Meditation Cushion"),
         lambda r: {"material": r.choice(("TPE", "PVC", "Natural rubber", "Cotton")),
                    "thickness_mm": r.choice((4, 6, 8))},
         ("colour", ("Purple", "Teal", "Grey", "Saffron")), (299, 4_999),
         "A {adj} companion for a steady practice at home or in class."),
    Leaf(("Toys & Games", "Puzzles"),
         (number("pieces", "Pieces"), text("age_range", "Age range")),
         ("Jigsaw Puzzle", "3D Puzzle", "Brain Teaser", "Floor Puzzle"),
         lambda r: {"pieces": r.choice((100, 250, 500, 1000)), "age_range": r.choice(("3-6", "6-12", "12+"))},
         ("theme", ("Maps", "Animals", "Monuments", "Space")), (299, 2_499),
         "A {adj} puzzle that turns a quiet evening into a small adventure."),
    Leaf(("Beauty & Personal Care", "Skincare"),
         (one_of("skin_type", "Skin type", "All", "Oily", "Dry", "Sensitive"), number("volume_ml", "Volume (ml)")),
         ("Face Wash", "Moisturiser", "Sunscreen", "Serum", "Face Mask"),
         lambda r: {"skin_type": r.choice(("All", "Oily", "Dry", "Sensitive")), "volume_ml": r.choice((50, 100, 200))},
         ("pack", ("Single", "Pack of 2")), (199, 1_999),
         "A {adj} formula with gentle ingredients for every day."),
)

# The categories to make before the products, root first: every prefix of each leaf's path.
CATEGORIES: tuple[tuple[tuple[str, ...], tuple[dict[str, Any], ...]], ...] = tuple(
    {path: definitions for leaf in LEAVES
     for path, definitions in [*((leaf.path[:n], ()) for n in range(1, len(leaf.path))),
                               (leaf.path, leaf.definitions)]}.items())

SYLLABLES = ("vol", "tra", "zen", "ora", "kai", "lum", "nex", "ver", "sol", "mira", "dha", "ri", "tek", "pix",
             "ava", "sur", "ind", "ra", "no", "vi", "sta", "qua", "lo", "ka")
ADJECTIVES = ("Classic", "Nova", "Prime", "Lite", "Pro", "Ultra", "Essential", "Urban", "Aero", "Swift", "Pure",
              "Royal", "Eco", "Max", "Studio", "Trail", "Everyday", "Signature")
QUALITIES = ("dependable", "beautifully made", "light", "well-priced", "premium", "compact", "durable", "thoughtful")


def brand_name(number: int) -> str:
    """One of 400 made-up brand names, the same for the same number."""
    rng = random.Random(f"brand-{number % 400}")
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 2, 3)))).capitalize()


def product(number: int) -> dict[str, Any]:
    """Synthetic product `number`, in the shape of `schemas.ProductImport`."""
    rng = random.Random(number)
    leaf = LEAVES[rng.randrange(len(LEAVES))]
    brand = brand_name(rng.randrange(10_000))
    name = f"{brand} {rng.choice(ADJECTIVES)} {rng.choice(leaf.nouns)} {rng.choice('AXSZM')}{rng.randrange(2, 99)}"
    option, values = leaf.axis
    chosen = sorted(rng.sample(range(len(values)), rng.randint(1, min(3, len(values)))))
    low, high = leaf.rupees
    base = rng.randrange(low, high)
    variants = []
    for position, index in enumerate(chosen):
        rupees = round(base * (1 + 0.12 * position)) // 10 * 10 + 9
        variant: dict[str, Any] = {"sku": f"SYN{number:07d}-{position + 1}", "name": values[index],
                                   "options": {option: values[index]},
                                   "price": {"amount": rupees * 100, "currency": CURRENCY}}
        if rng.random() < 0.25:  # on offer
            variant["compare_at_price"] = {"amount": round(rupees * 1.25) * 100, "currency": CURRENCY}
        variants.append(variant)
    slug = f"syn-{number}"
    return {
        "name": name,
        "description": f"{leaf.blurb.format(adj=rng.choice(QUALITIES)).capitalize()} By {brand}.",
        "category": " > ".join(leaf.path),
        "brand": brand,
        "attributes": leaf.attributes(rng),
        "media": [{"url": f"{MEDIA_BASE}/{slug}/{n}.jpg", "alt": f"{name}, {view}"}
                  for n, view in enumerate(("front", "side"), start=1)],
        "variants": variants,
    }


def products(count: int) -> Iterator[dict[str, Any]]:
    for number in range(1, count + 1):
        yield product(number)
