"""Internal tokens are memoised on both sides of a hop; neither memo may outlive a token."""

from __future__ import annotations

import time

import pytest

from amazonlite.platform.errors import Unauthorized
from amazonlite.platform.security import InternalTokens, Principal

ADA = Principal(tenant_id="acme", user_id="ada", roles=frozenset({"customer"}))


def test_a_minted_token_is_handed_out_again_for_the_same_principal_and_audience() -> None:
    tokens = InternalTokens("s" * 32, ttl_seconds=60)
    token = tokens.mint(ADA, audience="catalog", caller="gateway")
    assert tokens.mint(ADA, audience="catalog", caller="gateway") == token
    assert tokens.mint(ADA, audience="orders", caller="gateway") != token
    assert tokens.mint(Principal(tenant_id="acme"), audience="catalog", caller="gateway") != token
    assert tokens.verify(token, audience="catalog") == Principal(
        tenant_id="acme", user_id="ada", roles=frozenset({"customer"}), caller="gateway")


def test_a_verified_token_is_refused_for_another_audience_and_once_it_expires() -> None:
    tokens = InternalTokens("s" * 32, ttl_seconds=1)
    token = tokens.mint(ADA, audience="catalog", caller="gateway")
    assert tokens.verify(token, audience="catalog").user_id == "ada"
    with pytest.raises(Unauthorized):
        tokens.verify(token, audience="orders")
    with pytest.raises(Unauthorized):
        tokens.verify(token[:-2] + ("AA" if not token.endswith("AA") else "BB"), audience="catalog")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # its exp is at most a second away
        try:
            tokens.verify(token, audience="catalog")
        except Unauthorized:
            return
        time.sleep(0.05)
    pytest.fail("an expired internal token was still accepted")
