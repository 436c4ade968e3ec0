"""The service's HTTP endpoints, served by a real aiohttp server on 127.0.0.1 and fetched with httpx."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from bots.http import HttpServer, readiness_from_probes, store_probe
from core.config import Settings
from core.metrics import Metrics
from core.store import open_store


def always(checks: Mapping[str, bool]):
    async def readiness() -> Mapping[str, bool]:
        return checks

    return readiness


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


def url(server: HttpServer, path: str) -> str:
    return f"http://127.0.0.1:{server.port}{path}"


async def test_healthz_answers_ok_while_the_process_lives(http: httpx.AsyncClient):
    async with HttpServer(Metrics(), always({"database": False}), host="127.0.0.1") as server:
        response = await http.get(url(server, "/healthz"))
    assert response.status_code == 200
    assert response.text == "ok"


async def test_readyz_is_200_only_when_every_check_passes(http: httpx.AsyncClient):
    checks = {"database": True, "slack": True, "discord": True}
    async with HttpServer(Metrics(), always(checks), host="127.0.0.1") as server:
        ready = await http.get(url(server, "/readyz"))
        checks["discord"] = False
        not_ready = await http.get(url(server, "/readyz"))
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "checks": {"database": True, "slack": True, "discord": True}}
    assert not_ready.status_code == 503
    assert not_ready.json()["checks"]["discord"] is False
    assert not_ready.json()["ready"] is False


async def test_readyz_is_503_when_nothing_is_checked_or_the_check_itself_breaks(http: httpx.AsyncClient):
    async def broken() -> Mapping[str, bool]:
        raise ConnectionError("secret-ish detail")

    async with HttpServer(Metrics(), always({}), host="127.0.0.1") as empty:
        nothing = await http.get(url(empty, "/readyz"))
    async with HttpServer(Metrics(), broken, host="127.0.0.1") as failing:
        raised = await http.get(url(failing, "/readyz"))
    assert nothing.status_code == 503
    assert raised.status_code == 503
    assert raised.json()["error"] == "ConnectionError"
    assert "secret-ish" not in raised.text


async def test_probes_that_fail_or_hang_count_as_not_ready(http: httpx.AsyncClient):
    never = asyncio.Event()

    async def up() -> bool:
        return True

    async def crashing() -> bool:
        raise OSError("socket closed")

    async def hanging() -> bool:
        await never.wait()
        return True

    readiness = readiness_from_probes({"slack": up, "discord": crashing, "database": hanging}, timeout_s=0.2)
    async with HttpServer(Metrics(), readiness, host="127.0.0.1") as server:
        response = await http.get(url(server, "/readyz"))
    assert response.status_code == 503
    assert response.json()["checks"] == {"slack": True, "discord": False, "database": False}


async def test_database_probe_follows_the_store(http: httpx.AsyncClient, tmp_path: Path):
    settings = Settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'bot.db'}")
    store = await open_store(settings)
    readiness = readiness_from_probes({"database": store_probe(store)})
    async with HttpServer(Metrics(), readiness, host="127.0.0.1") as server:
        open_answer = await http.get(url(server, "/readyz"))
        await store.close()
        closed_answer = await http.get(url(server, "/readyz"))
    assert (open_answer.status_code, open_answer.json()["checks"]) == (200, {"database": True})
    assert (closed_answer.status_code, closed_answer.json()["checks"]) == (503, {"database": False})


async def test_draining_turns_readyz_503_but_keeps_healthz_alive(http: httpx.AsyncClient):
    async with HttpServer(Metrics(), always({"database": True}), host="127.0.0.1") as server:
        server.mark_draining()
        ready = await http.get(url(server, "/readyz"))
        alive = await http.get(url(server, "/healthz"))
    assert ready.status_code == 503
    assert ready.json()["draining"] is True
    assert alive.status_code == 200


async def test_metrics_endpoint_serves_prometheus_text(http: httpx.AsyncClient):
    metrics = Metrics()
    metrics.record_answer("discord", "complete", ttft_s=0.4, total_s=2.0)
    async with HttpServer(metrics, always({"database": True}), host="127.0.0.1") as server:
        response = await http.get(url(server, "/metrics"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'seedbot_requests_total{outcome="complete",platform="discord"} 1.0' in response.text
    assert "# TYPE seedbot_answer_seconds histogram" in response.text


async def test_an_adapter_route_is_served_on_the_same_port(http: httpx.AsyncClient):
    async def slack_events(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"challenge": body["challenge"]})

    server = HttpServer(Metrics(), always({"database": True}), host="127.0.0.1")
    server.add_route("POST", "/slack/events", slack_events)
    async with server:
        response = await http.post(url(server, "/slack/events"), json={"challenge": "abc123"})
        with pytest.raises(RuntimeError, match="before the HTTP server starts"):
            server.add_route("POST", "/late", slack_events)
    assert response.json() == {"challenge": "abc123"}


async def test_a_busy_port_gives_a_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = HttpServer(Metrics(), always({}), host="127.0.0.1", port=port)
        with pytest.raises(OSError, match="SEEDBOT_HTTP_PORT"):
            await server.start()
