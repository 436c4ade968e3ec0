"""`seedbot run`: every configured platform in one process, with health, metrics and graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Protocol, TextIO, runtime_checkable

from bots.http import HttpServer, Probe, readiness_from_probes, store_probe
from bots.logs import configure_logging
from bots.opening import open_service
from bots.web.app import mount_console
from bots.web.live import ServiceAnswers
from core.config import Settings
from core.service import ChatService

log = logging.getLogger("seedbot.run")

EXIT_CONFIG = 3
PLATFORMS = ("slack", "discord")

NOTHING_CONFIGURED = """No chat platform is configured. Set one of:
  Slack:   SLACK_BOT_TOKEN, and SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET + SEEDBOT_HTTP_PORT
  Discord: DISCORD_BOT_TOKEN
To try the bot with only AIML_API_KEY, run: seedbot chat"""


class Runner(Protocol):
    def ready(self) -> bool: ...

    async def start(self) -> None: ...

    async def wait_closed(self) -> None: ...

    async def stop(self, grace_s: float | None = None) -> None: ...


@runtime_checkable
class ReportsShards(Protocol):
    """A runner whose connection is split in shards (Discord with DISCORD_SHARD_COUNT)."""

    def shard_readiness(self) -> dict[str, bool] | None: ...


def wanted_platforms(settings: Settings, asked: Sequence[str]) -> tuple[list[str], list[str]]:
    """(platforms to start, problems): the ones asked for, or every one that has credentials."""
    configured = {"slack": settings.slack_configured, "discord": settings.discord_configured}
    if not asked:
        return [name for name in PLATFORMS if configured[name]], []
    problems = []
    for name in asked:
        if not configured[name]:
            if name == "slack":
                problems.append(
                    "slack: set SLACK_BOT_TOKEN and SLACK_APP_TOKEN"
                    " (or SLACK_SIGNING_SECRET + SEEDBOT_HTTP_PORT)"
                )
            else:
                problems.append("discord: set DISCORD_BOT_TOKEN")
    return list(asked), problems


def health_server(
    service: ChatService, *, port: int, host: str = "0.0.0.0"
) -> tuple[HttpServer, dict[str, Probe]]:
    """/healthz, /readyz and /metrics of `service`, and the probes /readyz runs (the platforms' are
    added to them before it starts): the database is required; Redis is shown, never required, since
    without it an instance still answers, pacing and stopping alone."""
    probes: dict[str, Probe] = {"database": store_probe(service.store)}
    http = HttpServer(service.metrics, readiness_from_probes(probes), host=host, port=port)
    http.add_readiness_detail("redis", service.redis_state)
    return http, probes


def build_runners(settings: Settings, service: ChatService, http: HttpServer | None, names: Sequence[str]):
    runners: dict[str, Runner] = {}
    if "slack" in names:
        from bots.slack.runner import SlackRunner

        runners["slack"] = SlackRunner(settings, service, http=http)
    if "discord" in names:
        from bots.discord.runner import DiscordRunner

        runners["discord"] = DiscordRunner(settings, service)
    return runners


async def run(settings: Settings, asked: Sequence[str] = (), *, err: TextIO = sys.stderr) -> int:
    configure_logging(settings)
    names, problems = wanted_platforms(settings, asked)
    if problems or not names:
        print("\n".join(problems) if problems else NOTHING_CONFIGURED, file=err)
        return EXIT_CONFIG
    service = await open_service(settings, err)
    if service is None:
        return EXIT_CONFIG

    http: HttpServer | None = None
    runners: dict[str, Runner] = {}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        if settings.http_port is not None:
            http, probes = health_server(service, port=settings.http_port)
            mount_console(http, service, settings, live=ServiceAnswers(service))
        elif settings.admin_token is not None:
            log.warning("SEEDBOT_ADMIN_TOKEN is set but SEEDBOT_HTTP_PORT is not: the admin console is off")
        runners = build_runners(settings, service, http, names)
        if http is not None:
            for name, runner in runners.items():
                probes[name] = _ready_probe(runner)
                if isinstance(runner, ReportsShards):  # /readyz shows each shard, e.g. "discord_shards"
                    http.add_readiness_detail(f"{name}_shards", runner.shard_readiness)
            await http.start()
        await service.join_instances(coordinated=settings.redis_url is not None)
        for name, runner in runners.items():
            await runner.start()
            log.info("%s connected", name)
        tidy = asyncio.create_task(service.keep_tidy())
        lease = asyncio.create_task(service.keep_instance())
        closed = [asyncio.create_task(runner.wait_closed()) for runner in runners.values()]
        stopping = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopping, *closed], return_when=asyncio.FIRST_COMPLETED)
        tidy.cancel()
        lease.cancel()
        for task in done:
            if task is not stopping and task.exception() is not None:
                print(f"seedbot: {task.exception()}", file=err)
                return 1
        log.info("shutting down: finishing answers in flight (up to %.0f s)", settings.shutdown_grace_s)
        return 0
    except Exception as error:  # a start-up failure: one line, not a traceback
        print(f"seedbot: {error}", file=err)
        return 1
    finally:
        if http is not None:
            http.mark_draining()
        # Each step on its own: one failing must not leave the others' connections open.
        steps = [service.drain(settings.shutdown_grace_s)]
        steps += [runner.stop(grace_s=1.0) for runner in runners.values()]
        steps += [http.stop()] if http is not None else []
        steps += [service.close()]
        for step in steps:
            try:
                await step
            except Exception:
                log.exception("shutdown step failed")
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def _ready_probe(runner: Runner):
    async def probe() -> bool:
        return runner.ready()

    return probe
