"""The gateway's cache of public catalog reads, black-box, in both topologies: a repeated read is
answered by the gateway, and a change to the catalog is seen at once, whether it came through the
gateway (a write) or behind it (an operator loading data straight into the catalog's database,
which the gateway hears of only through `product.updated.v1`). The platforms' cache entries never
expire on their own here (platforms.py), so only an invalidation can make a change visible."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e import platforms
from tests.e2e.actors import assert_ok, eventually, sign_in, tenant_header

pytestmark = [pytest.mark.xdist_group("e2e")]

TENANT = platforms.OTHER_TENANT


def products(api: httpx.Client) -> httpx.Response:
    return api.get("/products", params={"limit": 5, "sort": "name"}, headers=tenant_header(TENANT))


def test_a_repeated_read_is_answered_by_the_gateway_and_a_change_behind_it_is_seen(
        platform: platforms.Platform) -> None:
    with httpx.Client(base_url=f"{platform.base_url}/api/v1", timeout=30) as api:
        # Until the events of earlier changes have arrived, the gateway may forget an entry again.
        cached = eventually(lambda: (r := products(api)).headers.get("x-cache") == "hit" and r,
                            timeout=60, what="a repeated read to be answered from the cache")
        before = assert_ok(cached)["items"]

        # An operator loads the demo catalog into the tenant, straight into the catalog's database.
        platform.cli("seed", "--tenant", TENANT)

        def refreshed() -> httpx.Response | None:
            answer = products(api)
            return answer if answer.status_code == 200 and len(answer.json()["items"]) > len(before) else None

        after = eventually(refreshed, timeout=90, what="the seeded products to show through the gateway's cache")
        assert after.headers["x-cache"] == "miss"
        # The seed's rows are in the catalog's database before its events reach the gateway: a read in
        # between is cached, then dropped when they arrive. Once they have, the read is kept again.
        eventually(lambda: products(api).headers["x-cache"] == "hit", timeout=60,
                   what="the read of the seeded products to be answered from the cache")


def test_a_write_through_the_gateway_is_seen_by_the_next_public_read(platform: platforms.Platform) -> None:
    with httpx.Client(base_url=f"{platform.base_url}/api/v1", timeout=30) as api:
        admin = sign_in(api, platforms.OTHER_ADMIN_EMAIL, platforms.OTHER_ADMIN_PASSWORD, TENANT)
        created = assert_ok(api.post("/products", headers=admin.auth, json={
            "name": "Cache Kettle", "slug": "cache-kettle", "status": "active",
            "variants": [{"sku": "CACHE-KETTLE-1", "name": "1 litre",
                          "price": {"amount": 1999, "currency": "INR"}}]}), 201)
        path = f"/products/{created['id']}"
        public = tenant_header(TENANT)
        # The creation's own event invalidates the tenant's entries again when it arrives: wait for it.
        cached = eventually(lambda: (r := api.get(path, headers=public)).headers.get("x-cache") == "hit" and r,
                            timeout=60, what="a repeated read to be answered from the cache")
        assert cached.json()["name"] == "Cache Kettle"

        assert_ok(api.patch(path, headers=admin.auth, json={"name": "Renamed Kettle"}))
        fresh = api.get(path, headers=public)  # at once: no waiting for the event
        assert fresh.headers["x-cache"] == "miss" and fresh.json()["name"] == "Renamed Kettle"

        # Admins see drafts, so their reads always reach the catalog.
        as_admin = api.get(path, headers=admin.auth)
        assert as_admin.status_code == 200 and "x-cache" not in as_admin.headers
