"""Schemathesis against the gateway's merged OpenAPI document: the document tells the truth.

Every operation of `/openapi.json` gets generated requests in every phase schemathesis has: the
document's examples, coverage (boundary values, each constraint broken in turn, a missing required
header, a method the path does not have), fuzzing of valid and invalid data, and stateful sequences
that follow the links it infers (a POST's id into the GET, PATCH and DELETE of that id). Every
check it has judges the answers: no 5xx, every status, content type, header and body as
documented, valid data accepted, invalid data refused, a deleted resource gone and a created one
there, authentication enforced, 405 with `Allow` for an undocumented method. Three callers: an
anonymous one, a signed-in customer and a platform admin.

The run is `schemathesis run` (its CLI: the phases and the checks of the coverage phase exist only
there), against a running embedded platform. Signed-in callers are Web Fuzzing Commons identities,
so that schemathesis knows the credentials (the ignored-auth check then also sends each request
without them, and with forged ones) and, for a customer, a peer. Its configuration is below, with a
reason for each expectation that differs from schemathesis's defaults.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e import actors, platforms

pytestmark = [pytest.mark.xdist_group("fuzz")]

# Per operation and phase: about 50 s per caller, 2.5 min for the three on two cores.
EXAMPLES_PER_OPERATION = 25
SEED = 20261207
HOOKS = "tests.e2e.fuzz_hooks"
REPO = Path(__file__).resolve().parents[2]

# Valid data the server may refuse for what a schema cannot know, by operation: the status and why.
# Opaque values a client only gets from the server (a page's `next_cursor`, a mailed token): the
# schema says what they look like, not which ones were issued, so a well-formed one that was not is
# 400, as unknown credentials are 401 (schemathesis accepts that of a login). References to the
# tenant's own data (a category or brand id: any uuid is well formed), and rules across fields
# (variants with distinct SKUs and one currency, min_price <= max_price, no category under itself),
# which the schemas describe but JSON Schema cannot state, are 422.
CURSOR = (400, "a cursor the server did not issue")
MAILED_TOKEN = (400, "a token the server did not mail")
CATALOG_REFERENCES = (422, "an unknown category or brand, variants sharing a SKU or mixing currencies")
# The cart: a version another change has moved on from, and the limits that are settings (the per-line
# maximum, the cart's number of lines) or facts of the catalog (a product priced in another currency).
STALE_VERSION = (412, "an If-Match naming a version the cart no longer has")
LINE_RULES = (422, "more of a SKU than the per-line maximum (a setting), a line beyond the cart's maximum, "
                   "or a product priced in another currency than the tenant's")
COUPON_RULES = (422, "ends_at not after starts_at, or a percent above 100 (once combined with the stored "
                     "coupon, for a change)")
NUL_IN_FREE_FORM = (400, "a NUL character in free-form JSON, which the platform refuses in any text")
REFUSED_FOR_WHAT_THE_SCHEMA_CANNOT_KNOW: dict[str, list[tuple[int, str]]] = {
    "GET /api/v1/products": [CURSOR, (422, "min_price above max_price, or an attribute filter that is not key:value")],
    # Search: the engine reads q as words (one with no letter or digit has none) and filters as key:value.
    "GET /api/v1/search": [(400, "a cursor the server did not issue, a q with no word, an attribute filter that "
                                 "is not key:value, or min_price above max_price")],
    "GET /api/v1/search/autocomplete": [(400, "a q with no word")],
    "GET /api/v1/categories": [CURSOR],
    "GET /api/v1/brands": [CURSOR],
    "GET /api/v1/admin/tenants": [CURSOR],
    "POST /api/v1/auth/verify-email": [MAILED_TOKEN],
    "POST /api/v1/auth/password/reset": [MAILED_TOKEN],
    "POST /api/v1/products": [CATALOG_REFERENCES],
    "PATCH /api/v1/products/{product_id}": [CATALOG_REFERENCES],
    "POST /api/v1/categories": [(422, "an unknown parent category, or attribute definitions breaking a rule across "
                                      "fields (a one_of needs options, only a one_of has them, each key once)")],
    "PATCH /api/v1/categories/{category_id}": [(422, "an unknown parent, one that is the category or under it, or "
                                                     "attribute definitions breaking a rule across fields")],
    "GET /api/v1/inventory/low-stock": [CURSOR],
    "GET /api/v1/inventory/{sku}/ledger": [CURSOR],
    "GET /api/v1/coupons": [CURSOR],
    "POST /api/v1/coupons": [COUPON_RULES],
    "PATCH /api/v1/coupons/{code}": [COUPON_RULES],
    "POST /api/v1/cart/items": [LINE_RULES, STALE_VERSION],
    "PATCH /api/v1/cart/items/{sku}": [LINE_RULES, STALE_VERSION],
    "DELETE /api/v1/cart/items/{sku}": [STALE_VERSION],
    "POST /api/v1/cart/merge": [STALE_VERSION],
    "POST /api/v1/cart/coupon": [(422, "a code no coupon has, one not started or ended, or a subtotal under its "
                                       "minimum"), STALE_VERSION],
    "DELETE /api/v1/cart/coupon": [STALE_VERSION],
    # Checkout: the customer's cart and address book are state the schema cannot see.
    "POST /api/v1/orders": [(422, "an empty cart, an address id that is not the customer's, or a payment provider "
                                  "the shop does not take")],
    "GET /api/v1/orders": [CURSOR],
    # Payments: a provider's event and a checkout's callback are free-form JSON the provider signs;
    # the platform refuses a NUL character in any text (no provider sends one).
    "POST /api/v1/payments/webhooks/{provider}": [NUL_IN_FREE_FORM],
    "POST /api/v1/payments/{payment_id}/verify": [NUL_IN_FREE_FORM],
}
POSITIVE_STATUSES = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]  # schemathesis's default
# How invalid data may be refused (schemathesis's default), and with 412 where the operation takes an
# If-Match: a value the document does not allow names no version, so its precondition fails.
REJECTION_STATUSES = ["400", "401", "403", "404", "405", "406", "409", "415", "422", "428", "429", "5xx"]

CONFIG = "\n".join([
    f'hooks = "{HOOKS}"',
    "[generation]",
    # A NUL in generated text is refused at the edge (400 nul-character); the document says so with
    # a pattern, and invalid data still carries NULs.
    "allow-x00 = true",
    *(f'[[operations]]\ninclude-name = "{name}"\n'
      f"checks.positive_data_acceptance.expected-statuses = {[*POSITIVE_STATUSES, *(str(s) for s, _ in refusals)]!r}"
      + (f"\nchecks.negative_data_rejection.expected-statuses = {[*REJECTION_STATUSES, '412']!r}"
         if STALE_VERSION in refusals else "")
      for name, refusals in REFUSED_FOR_WHAT_THE_SCHEMA_CANNOT_KNOW.items()),
])


@pytest.fixture(scope="module")
def fuzzed_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[platforms.Platform]:
    workdir: Path = tmp_path_factory.mktemp("platform-fuzz")
    # Thousands of requests a minute from one address: the gateway's rate limit is another test's
    # subject (tests/e2e/test_resilience.py), here it would only turn the run into 429s. Raising the
    # tenant's limits through the admin API would not do: the admin's run PATCHes tenants too.
    with platforms.embedded(workdir, extra_env={"AMAZONLITE_GATEWAY_RATE_LIMIT_ENABLED": "false"}) as running:
        yield running


def _identities(platform: platforms.Platform, caller: str) -> list[tuple[str, str]]:
    """The caller's access token, and for a customer another customer's: schemathesis's
    object-level authorization check replays each of the caller's reads as that peer, who must
    not get the caller's objects (a profile, addresses, preferences). A platform admin has no such
    peer: it may read every tenant's objects, and another tenant's admin reads its own tenant."""
    with httpx.Client(base_url=f"{platform.base_url}/api/v1", timeout=30) as api:
        if caller == "admin":
            return [("admin", actors.sign_in(api, platforms.ADMIN_EMAIL, platforms.ADMIN_PASSWORD,
                                             "default").access_token)]
        if caller == "customer":
            return [("customer", actors.sign_up(api, "default", name="Fuzzed Customer").access_token),
                    ("other-customer", actors.sign_up(api, "default", name="Other Customer").access_token)]
    return []


def _wfc_auth(identities: list[tuple[str, str]], path: Path) -> str:
    """A Web Fuzzing Commons auth document of the identities, and its `[auth.wfc]` section: every
    request as the first; the others loaded as its peers."""
    path.write_text(json.dumps({"auth": [
        {"name": name, "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {token}"}]}
        for name, token in identities]}))
    names = [name for name, _ in identities]
    peers = f"peers = {names!r}\n" if len(names) > 1 else ""
    return f'[auth.wfc]\npath = "{path}"\nuser = "{names[0]}"\n{peers}'


@pytest.mark.parametrize("caller", ["anonymous", "customer", "admin"])
def test_the_document_tells_the_truth(fuzzed_platform: platforms.Platform, caller: str, tmp_path: Path) -> None:
    identities = _identities(fuzzed_platform, caller)
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG + "\n" + (_wfc_auth(identities, tmp_path / "auth.json") if identities else ""))
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color", "run",
        f"{fuzzed_platform.base_url}/openapi.json", "--checks", "all",
        "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", str(EXAMPLES_PER_OPERATION),
        "--seed", str(SEED), "--workers", "1", "--request-timeout", "30",
        "--report", "junit", "--report-dir", str(tmp_path / "report"),
    ]
    if identities:
        # Logout revokes the access token every later request of the run carries; the anonymous
        # caller fuzzes it (401 for every body, as documented).
        command += ["--exclude-path", "/api/v1/auth/logout"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, f"schemathesis as {caller}:\n{result.stdout[-20000:]}\n{result.stderr[-3000:]}"
