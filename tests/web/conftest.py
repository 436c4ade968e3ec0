"""A real service (store, metrics, setters) behind a real HTTP server with the console mounted."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import pytest

from bots.http import HttpServer, readiness_from_probes, store_probe
from bots.web.app import Console, mount_console
from core.config import Settings
from core.service import ChatService

TOKEN = "console-test-token-0123456789abcdef"


@dataclass
class ConsoleServer:
    service: ChatService
    console: Console
    base_url: str


@pytest.fixture
async def console_server(make_settings: Callable[..., Settings]) -> AsyncIterator[ConsoleServer]:
    settings = make_settings(admin_token=TOKEN)
    service = await ChatService.open(settings)
    server = HttpServer(
        service.metrics, readiness_from_probes({"database": store_probe(service.store)}), host="127.0.0.1"
    )
    console = mount_console(server, service, settings)
    assert console is not None
    async with server:
        yield ConsoleServer(service, console, f"http://127.0.0.1:{server.port}")
    await service.close()


@pytest.fixture
async def client(console_server: ConsoleServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=console_server.base_url, timeout=10.0) as http:
        yield http
