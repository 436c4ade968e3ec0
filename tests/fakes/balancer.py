"""A load balancer in front of several app instances: each request goes to the next one in turn.

What Slack's HTTP mode meets when an app runs behind one: any instance may get any event, and a
retry of an event usually lands on another instance than the first attempt did.
"""

from __future__ import annotations

import itertools
from collections import Counter

import aiohttp
from aiohttp import web

from tests.fakes.loopback import serve_on_loopback

# Hop-by-hop and length headers are the proxy's own business (RFC 9110 §7.6.1).
_NOT_FORWARDED = frozenset({"host", "content-length", "connection", "transfer-encoding"})


class RoundRobinBalancer:
    def __init__(self, backends: list[str]) -> None:
        self.backends = backends  # base URLs, e.g. "http://127.0.0.1:8001"
        self.served: Counter[str] = Counter()  # backend -> requests forwarded
        self._next = itertools.cycle(backends)
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> RoundRobinBalancer:
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._forward)
        self._runner, self.port = await serve_on_loopback(app)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        backend = next(self._next)
        self.served[backend] += 1
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED}
        try:
            async with self._session.request(
                request.method, backend + request.path_qs, headers=headers, data=await request.read()
            ) as response:
                body = await response.read()
                kept = {k: v for k, v in response.headers.items() if k.lower() not in _NOT_FORWARDED}
                return web.Response(status=response.status, body=body, headers=kept)
        except aiohttp.ClientError:
            return web.Response(status=502, text="bad gateway")
