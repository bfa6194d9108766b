"""One OpenID Connect provider, seen as a relying party: its discovery document, the authorization
URL (with `state`, `nonce` and a PKCE S256 challenge), the code exchange (Authlib's async OAuth2
client over httpx) and the validation of the ID token against the provider's published keys.

No database here; `oidc.py` keeps the sign-in attempts and links identities to users.
"""

from __future__ import annotations

import hmac
import time
import warnings
from typing import Any

import authlib.deprecate
import httpx
import jwt
import structlog

from amazonlite.services.auth.errors import InvalidIdToken, OAuthCodeRejected, OAuthProviderUnavailable

with warnings.catch_warnings():
    # Authlib warns that its httpx integration will move to `httpx2`; it works with httpx today.
    # (Its own module turns its warnings "always" on when imported: imported first, above.)
    warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError

log = structlog.get_logger("amazonlite.auth")

SCOPE = "openid email profile"
# Only asymmetric signatures: never `none`, never HMAC (whose key would be our client secret).
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                                   "ES256", "ES384", "ES512", "EdDSA"})
# Google's ID tokens may name their issuer without the scheme.
ISSUER_ALIASES = {"https://accounts.google.com": ("accounts.google.com",)}
METADATA_TTL_SECONDS = 3600
CLOCK_LEEWAY_SECONDS = 30


class OpenIdProvider:
    def __init__(self, name: str, *, issuer: str, client_id: str, client_secret: str, redirect_uri: str,
                 timeout: float = 10.0) -> None:
        self.name = name
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.timeout = timeout
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: jwt.PyJWKSet | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.client_id)

    def _client(self) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(self.client_id, self.client_secret, scope=SCOPE, redirect_uri=self.redirect_uri,
                                 code_challenge_method="S256", timeout=self.timeout)

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.get(url)
                response.raise_for_status()
                body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("auth.oidc_provider_unreachable", provider=self.name, url=url, error=type(exc).__name__)
            raise OAuthProviderUnavailable(f"{self.name} could not be reached") from exc
        if not isinstance(body, dict):
            raise OAuthProviderUnavailable(f"{self.name} answered with something other than a JSON object")
        return body

    async def metadata(self) -> dict[str, Any]:
        """The discovery document (cached for an hour); its `issuer` must be the configured one."""
        if self._metadata is None or time.monotonic() - self._metadata_at > METADATA_TTL_SECONDS:
            metadata = await self._get_json(f"{self.issuer}/.well-known/openid-configuration")
            if str(metadata.get("issuer", "")).rstrip("/") != self.issuer:
                raise OAuthProviderUnavailable(f"{self.name}'s discovery document names another issuer")
            self._metadata, self._metadata_at, self._keys = metadata, time.monotonic(), None
        return self._metadata

    async def authorization_url(self, *, state: str, nonce: str, code_verifier: str) -> str:
        endpoint = (await self.metadata())["authorization_endpoint"]
        async with self._client() as client:
            url, _ = client.create_authorization_url(endpoint, state=state, nonce=nonce, code_verifier=code_verifier)
        return str(url)

    async def exchange(self, *, code: str, code_verifier: str) -> str:
        """The ID token the provider gives for `code` (and the verifier of its PKCE challenge)."""
        endpoint = (await self.metadata())["token_endpoint"]
        try:
            async with self._client() as client:
                token = await client.fetch_token(endpoint, grant_type="authorization_code", code=code,
                                                 code_verifier=code_verifier)
        except OAuthError as exc:
            log.info("auth.oidc_code_rejected", provider=self.name, error=exc.error)
            raise OAuthCodeRejected from exc
        except httpx.HTTPError as exc:
            raise OAuthProviderUnavailable(f"{self.name} could not be reached") from exc
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise InvalidIdToken("The provider answered without an ID token")
        return id_token

    async def _signing_key(self, kid: str | None) -> jwt.PyJWK:
        """The provider's key `kid`; the key set is fetched again once when a key is unknown (rotation)."""
        for refetch in (False, True):
            if self._keys is None or refetch:
                self._keys = jwt.PyJWKSet.from_dict(await self._get_json((await self.metadata())["jwks_uri"]))
            keys = self._keys.keys
            if kid is None and len(keys) == 1:
                return keys[0]
            for key in keys:
                if key.key_id == kid:
                    return key
        raise InvalidIdToken("The ID token is signed with a key the provider does not publish")

    async def validate_id_token(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        """The ID token's claims once its signature, issuer, audience, expiry and nonce check out."""
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError as exc:
            raise InvalidIdToken("The ID token is not a JWT") from exc
        supported = (await self.metadata()).get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = [alg for alg in supported if alg in ASYMMETRIC_ALGORITHMS]
        if header.get("alg") not in algorithms:
            raise InvalidIdToken("The ID token's signature algorithm is not accepted")
        key = await self._signing_key(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token, key.key, algorithms=algorithms, audience=self.client_id, leeway=CLOCK_LEEWAY_SECONDS,
                options={"require": ["iss", "aud", "exp", "iat", "sub"], "verify_iss": False})
        except jwt.ExpiredSignatureError as exc:
            raise InvalidIdToken("The ID token has expired") from exc
        except jwt.PyJWTError as exc:
            raise InvalidIdToken(f"The ID token is not valid: {exc}") from exc
        if claims["iss"] not in (self.issuer, *ISSUER_ALIASES.get(self.issuer, ())):
            raise InvalidIdToken("The ID token is from another issuer")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.client_id:
            raise InvalidIdToken("The ID token was issued to another party")
        if not hmac.compare_digest(str(claims.get("nonce", "")).encode(), nonce.encode()):
            raise InvalidIdToken("The ID token's nonce is not this sign-in's")
        return claims
