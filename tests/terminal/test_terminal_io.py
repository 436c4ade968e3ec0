"""The terminal as people use it: piped input to `seedbot ask`, documents, plain text in a pipe, and on
a real terminal (a pty) rendered Markdown and a line editor that remembers what was typed."""

from __future__ import annotations

import asyncio
import os
import pty

from tests.fakes.model_server import Script
from tests.process import REPO, SEEDBOT
from tests.terminal.test_ask import environment

MARKDOWN = "# Release notes\n\n- faster answers\n- fewer bugs\n\n```python\nprint('hi')\n```"


async def run(args: list[str], env: dict[str, str], stdin: bytes = b"") -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *SEEDBOT,
        *args,
        env=env,
        cwd=REPO,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), 60)
    return process.returncode or 0, out.decode(), err.decode()


def last_user_text(model_server) -> str:
    content = model_server.requests[-1].body["messages"][-1]["content"]
    return content if isinstance(content, str) else "\n".join(p.get("text", "") for p in content)


async def test_what_is_piped_into_ask_comes_along_as_a_file(model_server, tmp_path):
    diff = b"diff --git a/app.py b/app.py\n+def answer():\n+    return 42\n"
    code, _, _ = await run(["ask", "review this"], environment(model_server, tmp_path), stdin=diff)
    assert code == 0
    sent = last_user_text(model_server)
    assert sent.startswith("review this") and "+    return 42" in sent


async def test_ask_takes_documents_with_file(model_server, tmp_path):
    notes = tmp_path / "notes.md"
    notes.write_text("Meeting: ship on Friday.\n")
    code, _, _ = await run(["ask", "summarize", "--file", str(notes)], environment(model_server, tmp_path))
    assert code == 0 and "ship on Friday" in last_user_text(model_server)


async def test_chat_attaches_any_document_with_file(model_server, tmp_path):
    notes = tmp_path / "todo.txt"
    notes.write_text("buy milk\n")
    code, out, _ = await run(
        ["chat"], environment(model_server, tmp_path), stdin=f"/file {notes}\nwhat?\n".encode()
    )
    assert code == 0 and "attached todo.txt" in out and "buy milk" in last_user_text(model_server)


async def test_in_a_pipe_the_output_is_plain_text(model_server, tmp_path):
    env = environment(model_server, tmp_path)
    model_server.enqueue(Script(reasoning="thinking hard", content=MARKDOWN), Script(content=MARKDOWN))
    _, asked, _ = await run(["ask", "notes?"], env)
    _, chatted, _ = await run(["chat"], env, stdin=b"notes?\n")
    for out in (asked, chatted):
        assert "\x1b" not in out and "# Release notes" in out and "```python" in out


async def test_on_a_terminal_markdown_is_rendered_and_the_input_is_remembered(model_server, tmp_path):
    env = {**environment(model_server, tmp_path), "HOME": str(tmp_path), "TERM": "xterm-256color"}
    model_server.enqueue(Script(content=MARKDOWN))
    screen = await on_a_terminal(["chat"], env, typed=[b"notes please\r", b"/quit\r"], wait_for=b"fewer bugs")
    assert "Release notes" in screen and "# Release notes" not in screen and "```" not in screen
    assert "\x1b[" in screen  # styled
    assert "notes please" in (tmp_path / ".seedbot_chat_history").read_text()


async def on_a_terminal(args: list[str], env: dict[str, str], *, typed: list[bytes], wait_for: bytes) -> str:
    """Run seedbot with a pty as its terminal; type each line once the previous output has settled."""
    leader, follower = pty.openpty()
    process = await asyncio.create_subprocess_exec(
        *SEEDBOT, *args, env=env, cwd=REPO, stdin=follower, stdout=follower, stderr=follower
    )
    os.close(follower)
    screen = bytearray()
    loop = asyncio.get_running_loop()

    async def read_until(marker: bytes, within_s: float) -> None:
        deadline = loop.time() + within_s
        while marker not in screen:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"{marker!r} never appeared; the screen: {bytes(screen)[-2000:]!r}")
            try:
                chunk = await asyncio.wait_for(loop.run_in_executor(None, os.read, leader, 65536), remaining)
            except OSError:
                break
            screen.extend(chunk)

    try:
        await read_until(b"you> ", 30)
        os.write(leader, typed[0])
        await read_until(wait_for, 30)
        await read_until(b"you> ", 30)
        for line in typed[1:]:
            os.write(leader, line)
        await asyncio.wait_for(process.wait(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        os.close(leader)
    return bytes(screen).decode(errors="replace")
