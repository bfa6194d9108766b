"""`amazonlite seed`: a second warehouse and stock for every SKU the catalog's seed created."""

from __future__ import annotations

from pathlib import Path

from amazonlite.services.inventory.app import SERVICE
from tests.services.inventory.factories import admin, know, outbox, product_updated, stock, stock_rows
from tests.support.harness import running_service

INV = "/api/v1/inventory"


class TestSeed:
    async def test_stocks_every_known_sku_in_default_and_east_once(self, any_database_url: str,
                                                                  tmp_path: Path) -> None:
        assert SERVICE.seed is not None
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, admin(svc) as api:
            skus = [f"DEMO-{n:03d}-1" for n in range(1, 31)]
            for start in range(0, len(skus), 3):
                await svc.deliver(product_updated(*skus[start:start + 3]))
            await svc.deliver(product_updated("DRAFT-1", status="draft"))
            await know(svc, "COUNTED-1")
            await stock(svc, "COUNTED-1", units=7)

            await SERVICE.seed(svc.runtime, "default")

            warehouses = (await api.get(f"{INV}/warehouses")).json()["items"]
            assert [(w["code"], w["priority"]) for w in warehouses] == [("default", 0), ("east", 1)]
            rows = await stock_rows(svc)
            for sku in skus:
                in_default, _ = rows[(sku, "default")]
                in_east, _ = rows[(sku, "east")]
                assert 20 <= in_default <= 60 and 10 <= in_east <= 30
            assert rows[("COUNTED-1", "default")] == (7, 0)
            assert ("COUNTED-1", "east") not in rows and ("DRAFT-1", "default") not in rows
            assert len({rows[(sku, "default")] for sku in skus}) > 5  # not one figure for all
            ledger = (await api.get(f"{INV}/{skus[0]}/ledger")).json()["items"]
            assert {(e["kind"], e["reason"]) for e in ledger} == {("set", "seed")}
            assert (await api.get(f"{INV}/{skus[0]}")).json()["available"] == sum(
                rows[(skus[0], w)][0] for w in ("default", "east"))

            events = await outbox(svc)
            await SERVICE.seed(svc.runtime, "default")
            assert await stock_rows(svc) == rows
            assert await outbox(svc) == events
            assert len((await api.get(f"{INV}/{skus[0]}/ledger")).json()["items"]) == len(ledger)
