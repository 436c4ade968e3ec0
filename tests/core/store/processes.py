"""Start `tests.core.store.worker` processes and talk to them line by line, every wait bounded."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

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
