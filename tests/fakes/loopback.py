"""Serving a fake's aiohttp application on 127.0.0.1, on a free port."""

from __future__ import annotations

import ssl

from aiohttp import web


async def serve_on_loopback(
    app: web.Application, host: str = "127.0.0.1", *, ssl_context: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, int]:
    """Start `app` on `host` (a loopback address) with a port the OS picks; returns the runner and port."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, host, 0, ssl_context=ssl_context)
    await site.start()
    return runner, int(runner.addresses[0][1])
