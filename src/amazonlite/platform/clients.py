"""Service-to-service HTTP: httpx over the network, or over ASGI (no sockets) when embedded.

Every call carries an internal token minted for the target, the correlation id and the W3C trace
context of the current request.
"""

from __future__ import annotations

from typing import Any

import httpx

from amazonlite.platform.context import CORRELATION_HEADER, current_correlation_id
from amazonlite.platform.security import INTERNAL_TOKEN_HEADER, InternalTokens, Principal
from amazonlite.platform.tracing import inject_headers


class ServiceClient:
    def __init__(self, target: str, *, caller: str, tokens: InternalTokens, base_url: str | None = None,
                 app: Any = None, timeout: float = 5.0) -> None:
        if (base_url is None) == (app is None):
            raise ValueError("give a base_url or an ASGI app")
        transport = httpx.ASGITransport(app=app) if app is not None else None
        self.target = target
        self.caller = caller
        self._tokens = tokens
        self._client = httpx.AsyncClient(base_url=base_url or "http://embedded", transport=transport,
                                         timeout=timeout)

    async def request(self, method: str, path: str, *, principal: Principal, **kwargs: Any) -> httpx.Response:
        headers: dict[str, str] = dict(kwargs.pop("headers", None) or {})
        headers[INTERNAL_TOKEN_HEADER] = self._tokens.mint(principal, audience=self.target, caller=self.caller)
        correlation_id = current_correlation_id()
        if correlation_id:
            headers[CORRELATION_HEADER] = correlation_id
        inject_headers(headers)
        return await self._client.request(method, path, headers=headers, **kwargs)

    async def aclose(self) -> None:
        await self._client.aclose()


class ServiceDirectory:
    """Where a service finds the others: their ASGI apps (embedded) or their URLs (distributed).

    The topology fills it; a service asks `runtime.services.client("catalog")`.
    """

    def __init__(self, caller: str, tokens: InternalTokens, *, timeout: float = 5.0) -> None:
        self.caller = caller
        self._tokens = tokens
        self._timeout = timeout
        self._apps: dict[str, Any] = {}
        self._urls: dict[str, str] = {}
        self._clients: dict[str, ServiceClient] = {}

    def register(self, name: str, *, app: Any = None, url: str | None = None) -> None:
        if (app is None) == (url is None):
            raise ValueError("give an app or a url")
        if app is not None:
            self._apps[name] = app
        else:
            self._urls[name] = str(url)

    @property
    def known(self) -> list[str]:
        return sorted({*self._apps, *self._urls})

    def client(self, target: str) -> ServiceClient:
        client = self._clients.get(target)
        if client is None:
            if target in self._apps:
                client = ServiceClient(target, caller=self.caller, tokens=self._tokens, app=self._apps[target],
                                       timeout=self._timeout)
            elif target in self._urls:
                client = ServiceClient(target, caller=self.caller, tokens=self._tokens, base_url=self._urls[target],
                                       timeout=self._timeout)
            else:
                raise LookupError(f"{self.caller} knows no service {target!r}; known: {self.known}")
            self._clients[target] = client
        return client

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
