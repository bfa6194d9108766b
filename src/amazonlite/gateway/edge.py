"""The client's address as the gateway can trust it, and the security headers of every answer."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from collections.abc import Iterable

from amazonlite.platform.http import ASGIApp, Message, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Headers by which a proxy, or a client pretending to be one, names the client. None reaches a
# service (services take the client's address from the internal token), and only the first is
# ever read, only from a trusted proxy.
FORWARDING_HEADERS = frozenset({
    b"x-forwarded-for", b"forwarded", b"x-real-ip", b"x-client-ip", b"true-client-ip", b"cf-connecting-ip",
    b"fastly-client-ip", b"x-cluster-client-ip", b"client-ip", b"x-forwarded-host", b"x-forwarded-proto",
    b"x-forwarded-port", b"x-forwarded-prefix", b"x-forwarded-server",
})


class ClientAddress:
    """The end client's address of a request.

    The peer of the connection (the ASGI `client`), unless that peer is a trusted proxy: then the
    `X-Forwarded-For` chain is read from the right (the hop nearest the gateway), skipping trusted
    proxies, and the first address not among them is the client (with one proxy: the first hop).
    Addresses a client put at the left of the header itself are never believed over that.

    `Forwarded` (RFC 7239), `X-Real-IP` and the like are never read, not even from a trusted proxy:
    a proxy rewrites the one header it is configured to set, and passes the others on as the
    client sent them. X-Forwarded-For is the one every proxy and load balancer can append to.
    The HTTP server believes none of them (`platform/server.py`): the ASGI `client` is the peer.
    """

    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        self._trusted: list[Network] = [ipaddress.ip_network(p.strip(), strict=False) for p in trusted_proxies]

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._trusted)

    def of(self, scope: Scope) -> str | None:
        client = scope.get("client")
        peer = str(client[0]) if client else None
        if not self._trusted or peer is None or not self._is_trusted(peer):
            return peer
        hops: list[str] = []
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                hops += [h.strip() for h in value.decode("latin-1").split(",") if h.strip()]
        for hop in reversed(hops):
            if not _valid_address(hop):
                return peer  # a malformed chain: trust only what we saw
            if not self._is_trusted(hop):
                return hop
        return hops[0] if hops else peer


def _valid_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


API_CSP = "default-src 'none'; frame-ancestors 'none'"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def docs_csp(html: str) -> str:
    """A CSP that lets the Swagger UI page load: its scripts and styles from its CDN, its one inline
    script by hash, the API document from this origin, and nothing else."""
    hashes = " ".join("'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
                      for s in _INLINE_SCRIPT.findall(html))
    return ("default-src 'none'; "
            f"script-src https://cdn.jsdelivr.net {hashes}; "
            "style-src https://cdn.jsdelivr.net 'unsafe-inline'; "  # Swagger UI sets style attributes
            "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.jsdelivr.net; "
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class SecurityHeaders:
    """Pure ASGI: adds the security headers to every HTTP answer (replacing an upstream's own)."""

    def __init__(self, app: ASGIApp, *, csp_by_path: dict[str, str], hsts_max_age: int | None) -> None:
        self.app = app
        common = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                  (b"x-frame-options", b"DENY")]
        if hsts_max_age is not None:
            common.append((b"strict-transport-security", f"max-age={hsts_max_age}; includeSubDomains".encode()))
        self._common = common
        self._csp = {path: csp.encode() for path, csp in csp_by_path.items()}
        self._names = {name for name, _ in common} | {b"content-security-policy"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = [*self._common, (b"content-security-policy", self._csp.get(scope["path"], API_CSP.encode()))]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", ()) if h[0].lower() not in self._names]
                message["headers"] = headers + added
            await send(message)

        await self.app(scope, receive, send_with_headers)
