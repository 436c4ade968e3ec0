"""Start `tests.core.store.worker` processes and talk to them line by line, every wait bounded."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from core.config import Settings
from core.store import open_store, upgrade
from tests.core.store.worker import SHARED

REPO = Path(__file__).resolve().parents[3]
WAIT_S = 60.0


async def start_worker(url: str, name: str, mode: str) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.core.store.worker",
        url,
        name,
        mode,
        cwd=REPO,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    await expect_line(process, "ready")
    return process


async def read_line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), WAIT_S)
    if not line:
        assert process.stderr is not None
        error = await asyncio.wait_for(process.stderr.read(), WAIT_S)
        raise AssertionError(f"worker exited early: {error.decode(errors='replace')[-2000:]}")
    return line.decode().strip()


async def expect_line(process: asyncio.subprocess.Process, expected: str) -> None:
    assert await read_line(process) == expected


def go(process: asyncio.subprocess.Process) -> None:
    assert process.stdin is not None
    process.stdin.write(b"go\n")


async def finish(process: asyncio.subprocess.Process) -> int:
    return await asyncio.wait_for(process.wait(), WAIT_S)


async def kill_mid_reply(settings: Settings) -> None:
    """Kill -9 a worker while it streams a reply and writes other messages beside it."""
    await upgrade(settings)
    worker = await start_worker(settings.database_url.get_secret_value(), "writer", "reply")
    go(worker)
    await expect_line(worker, "streaming")
    await asyncio.sleep(0.3)  # let it get well into writing; the checks hold wherever it is cut
    worker.send_signal(signal.SIGKILL)
    assert await finish(worker) == -signal.SIGKILL


async def check_whole_after_kill(settings: Settings) -> None:
    """After `kill_mid_reply`: the reply is recovered, and everything the worker wrote is whole."""
    store = await open_store(settings)
    try:
        (recovered,) = await store.recover_streaming()
        assert (recovered.key, recovered.status, recovered.platform_message_id) == (
            SHARED,
            "interrupted",
            "reply-1",
        )
        messages = await store.conversation(SHARED, limit=1_000_000)
        asides = [m for m in messages if m.author_id == "U2"]
        # Every message the killed process wrote is whole: text and both attachments, or not there at all.
        assert all(len(m.attachments) == 2 for m in asides)
        assert [m.text for m in asides] == [f"aside {n}" for n in range(len(asides))]
        assert recovered.text.split() == [f"word{n}" for n in range(len(recovered.text.split()))]
        assert len(recovered.text.split()) in (len(asides), len(asides) + 1)
    finally:
        await store.close()
