"""A local OpenID provider for tests that sign in with "Google": oidc-provider-mock on a free port,
served by werkzeug in a thread, plus the user's part of the flow at the provider.

`expired_id_tokens()` makes the provider, under the same issuer URL, hand out ID tokens that
expired before they were issued (the provider's clock or configuration gone wrong): behind the
issuer run two mock apps, a sound one and one whose tokens live -120 s, and the switch picks which
answers. Both sign with one key: the mock's ID tokens name no `kid`, so a client could not tell two
keys apart (it would see a bad signature, not an expired token).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit, urlunsplit

import flask
import httpx
import oidc_provider_mock
import werkzeug.serving
from authlib import jose

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

CLIENT_ID = "amazonlite-test-client"
CLIENT_SECRET = "amazonlite-test-client-secret"


class LocalOidcProvider:
    def __init__(self) -> None:
        self._sound = oidc_provider_mock.app()
        self._expiring = oidc_provider_mock.app(access_token_max_age=dt.timedelta(seconds=-120))
        key = jose.RSAKey.generate_key(is_private=True)

        def sign_with_the_shared_key() -> None:
            # Runs after the mock's own hook, which puts its storage (and signing key) in `flask.g`.
            flask.g.oidc_provider_mock_storage.jwk = key

        for app in (self._sound, self._expiring):
            app.before_request(sign_with_the_shared_key)
        self._expired = False
        self._server = werkzeug.serving.make_server("localhost", 0, self._dispatch, threaded=True)
        self.issuer = f"http://localhost:{self._server.server_port}"

    def _dispatch(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        app = self._expiring if self._expired else self._sound
        return app(environ, start_response)

    @contextlib.contextmanager
    def running(self) -> Iterator[LocalOidcProvider]:
        thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                  name="oidc-provider", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(5)

    @contextlib.contextmanager
    def expired_id_tokens(self) -> Iterator[None]:
        """Within the block, every ID token the provider issues has already expired."""
        self._expired = True
        try:
            yield
        finally:
            self._expired = False

    def consent(self, authorization_url: str, *, sub: str, claims: dict[str, Any],
                nonce: str | None = None) -> str:
        """Play the user at the provider: say who they are and approve. Returns where the provider
        sends the browser back (the redirect URI with `code` and `state`). `nonce` replaces the one
        the client asked for (what a tampered or replayed authorization request carries)."""
        if nonce is not None:
            parts = urlsplit(authorization_url)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()} | {"nonce": nonce}
            authorization_url = urlunsplit(parts._replace(query=urlencode(query)))
        assert authorization_url.startswith(self.issuer + "/"), authorization_url
        with httpx.Client(timeout=15) as browser:
            stored = browser.put(f"{self.issuer}/users/{quote(sub)}", json=claims)
            assert stored.status_code == 204, stored.text
            approved = browser.post(authorization_url, data={"sub": sub})
        assert approved.status_code == 302, approved.text
        return approved.headers["location"]


@contextlib.contextmanager
def local_oidc_provider() -> Iterator[LocalOidcProvider]:
    with LocalOidcProvider().running() as provider:
        yield provider
