"""The service's HTTP side on SEEDBOT_HTTP_PORT: /healthz, /readyz, /metrics, and any routes an
adapter mounts (Slack's HTTP mode adds `POST /slack/events`) — one port, one server.

    server = HttpServer(metrics, readiness_from_probes({"database": store_probe(store), ...}), port=8080)
    server.add_route("POST", "/slack/events", slack_handler)   # before start()
    await server.start()
    ...
    server.mark_draining()   # SIGTERM: /readyz turns 503 so the load balancer stops sending work
    await server.stop()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from core.metrics import CONTENT_TYPE, Metrics
from core.store import Store

log = logging.getLogger("seedbot.http")

Readiness = Callable[[], Awaitable[Mapping[str, bool]]]
Probe = Callable[[], Awaitable[bool]]
# More about one check, e.g. Discord's shards; None: nothing to add (the key is left out).
Detail = Callable[[], Mapping[str, bool] | None]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DEFAULT_PROBE_TIMEOUT_S = 3.0


def readiness_from_probes(
    probes: Mapping[str, Probe], timeout_s: float = DEFAULT_PROBE_TIMEOUT_S
) -> Readiness:
    """Run named probes concurrently; a probe that raises or outlasts `timeout_s` counts as not ready."""

    async def run(name: str, probe: Probe) -> bool:
        try:
            async with asyncio.timeout(timeout_s):
                return bool(await probe())
        except Exception as error:
            # The type only: an exception's text may quote a connection string or a token.
            log.warning("readiness probe %s failed: %s", name, type(error).__name__)
            return False

    async def readiness() -> dict[str, bool]:
        results = await asyncio.gather(*(run(name, probe) for name, probe in probes.items()))
        return dict(zip(probes, results, strict=True))

    return readiness


def store_probe(store: Store) -> Probe:
    """The database answers a trivial query."""

    async def probe() -> bool:
        await store.schema_version()
        return True

    return probe


class HttpServer:
    def __init__(
        self,
        metrics: Metrics,
        readiness: Readiness,
        *,
        host: str = "0.0.0.0",
        port: int = 0,
        readiness_timeout_s: float = DEFAULT_PROBE_TIMEOUT_S * 2,
    ) -> None:
        self._metrics = metrics
        self._readiness = readiness
        self._host = host
        self._requested_port = port
        self._readiness_timeout_s = readiness_timeout_s
        self._draining = False
        self._details: dict[str, Detail] = {}
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self.app = web.Application()
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)
        self.app.router.add_get("/metrics", self._metrics_page)

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        """Mount an extra route (e.g. Slack's `/slack/events`); only before `start()`."""
        if self._runner is not None:
            raise RuntimeError("routes must be added before the HTTP server starts")
        self.app.router.add_route(method, path, handler)

    def add_readiness_detail(self, key: str, detail: Detail) -> None:
        """/readyz also shows `key: detail()` next to its checks (the checks alone decide readiness)."""
        self._details[key] = detail

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with port 0)."""
        if self._port is None:
            raise RuntimeError("the HTTP server has not started")
        return self._port

    def mark_draining(self) -> None:
        """From now on /readyz answers 503: the process is shutting down and takes no new work."""
        self._draining = True

    async def start(self) -> None:
        # No access log: probes hit these endpoints every few seconds and would drown the real events.
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._requested_port)
        try:
            await site.start()
        except OSError as error:
            await runner.cleanup()
            raise OSError(
                f"cannot listen on {self._host}:{self._requested_port} ({error.strerror}); "
                "choose a free port with SEEDBOT_HTTP_PORT"
            ) from None
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        log.info("HTTP server listening on %s:%d", self._host, self._port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> HttpServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- handlers --------------------------------------------------------------------------------

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _readyz(self, request: web.Request) -> web.Response:
        if self._draining:
            return web.json_response({"ready": False, "draining": True, "checks": {}}, status=503)
        try:
            async with asyncio.timeout(self._readiness_timeout_s):
                checks = {name: bool(ok) for name, ok in (await self._readiness()).items()}
        except Exception as error:
            log.warning("readiness check failed: %s", type(error).__name__)
            body = {"ready": False, "checks": {}, "error": type(error).__name__}
            return web.json_response(body, status=503)
        # Nothing checked means nothing is known to work: not ready.
        ready = bool(checks) and all(checks.values())
        body: dict[str, object] = {"ready": ready, "checks": checks}
        for key, detail in self._details.items():
            if (shown := detail()) is not None:
                body[key] = dict(shown)
        return web.json_response(body, status=200 if ready else 503)

    async def _metrics_page(self, request: web.Request) -> web.Response:
        response = web.Response(body=self._metrics.render())
        # aiohttp rejects a charset inside content_type=, so the exposition header is set as a whole.
        response.headers["Content-Type"] = CONTENT_TYPE
        return response
