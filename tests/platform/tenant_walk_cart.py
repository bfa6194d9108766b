"""How the tenant-scope walk (test_tenant_scope_walk.py) calls each public method of the cart
service's repositories. A method missing here fails `test_every_repository_method_has_a_plan`."""

from __future__ import annotations

from tests.platform.tenant_walk import Plan

PLANS: dict[str, dict[str, Plan]] = {
}
