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
