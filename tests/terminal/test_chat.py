"""`seedbot chat`: the terminal adapter, driven through the real command's stdin."""

from __future__ import annotations

import asyncio
import getpass

from PIL import Image

from tests.fakes.mcp_server import mcp_config
from tests.fakes.model_server import Script, tool_call, tool_round
from tests.process import REPO, SEEDBOT
from tests.terminal.test_ask import environment


async def chat(stdin: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *SEEDBOT,
        "chat",
        env=env,
        cwd=REPO,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_multi_turn_conversation_is_remembered_across_runs(model_server, tmp_path):
    env = environment(model_server, tmp_path)
    model_server.enqueue(Script(content="Nice to meet you, Ada."), Script(content="Your name is Ada."))
    code, out, _ = await chat("My name is Ada.\n/quit\n", env)
    assert code == 0 and "Nice to meet you, Ada." in out

    code, out, _ = await chat("What is my name?\n", env)  # a new process, the same SQLite store
    assert code == 0 and "Your name is Ada." in out
    messages = model_server.requests[1].body["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[2]["content"] == "Nice to meet you, Ada."


async def test_effort_command_changes_the_next_request(model_server, tmp_path):
    code, out, _ = await chat("/effort low\nhello\n/effort\n", environment(model_server, tmp_path))
    assert code == 0
    assert "Reasoning effort for you is now low." in out
    assert "Reasoning effort here: low (from your own setting)." in out
    assert model_server.requests[0].body["reasoning_effort"] == "low"
    code, out, _ = await chat("/effort extreme\n", environment(model_server, tmp_path))
    assert "Unknown effort `extreme`: use low, medium, high or default." in out and "/effort" in out


async def test_image_command_attaches_a_file_to_the_next_message(model_server, tmp_path):
    picture = tmp_path / "chart.png"
    Image.new("RGB", (20, 20), "green").save(picture)
    code, out, _ = await chat(f"/image {picture}\nwhat is this?\n", environment(model_server, tmp_path))
    assert code == 0 and "attached chart.png" in out
    parts = model_server.requests[0].body["messages"][-1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url"]


async def test_cost_and_forget(model_server, tmp_path):
    env = environment(model_server, tmp_path)
    model_server.enqueue(Script(content="ok", usd=0.125))
    code, out, _ = await chat("hi\n/cost\n/forget\n", env)
    assert code == 0
    assert "1 request" in out and "$0.125" in out
    assert "Done: deleted 2 stored messages of yours." in out
    await chat("again\n", env)
    assert [m["role"] for m in model_server.requests[-1].body["messages"]] == ["system", "user"]


async def test_unreachable_api_is_explained_and_the_chat_goes_on(model_server, tmp_path, unused_port):
    env = environment(
        model_server, tmp_path, AIML_BASE_URL=f"http://127.0.0.1:{unused_port}/v1", SEEDBOT_MAX_RETRIES="0"
    )
    code, out, _ = await chat("hello\n/effort\n", env)
    assert code == 0
    assert "Could not reach the model service" in out
    assert "Reasoning effort here: medium (from the default)." in out


async def test_a_corrupt_database_is_one_clear_line_not_a_traceback(model_server, tmp_path):
    (tmp_path / "ask.db").write_bytes(b"not a database at all" * 50)
    code, _, err = await chat("hello\n", environment(model_server, tmp_path))
    assert code == 3
    assert "database" in err and "Traceback" not in err


async def test_a_side_effect_tool_asks_and_the_next_line_answers(model_server, tmp_path):
    env = environment(model_server, tmp_path, SEEDBOT_MCP_CONFIG=mcp_config())
    note = tool_call("fake__record_note", {"note": "buy milk"})
    model_server.enqueue(tool_round(note), Script(content="Noted."))
    model_server.enqueue(
        tool_round(tool_call("fake__record_note", {"note": "sell milk"})), Script(content="OK.")
    )
    code, out, _ = await chat("remember milk\ny\nforget that\nn\n/quit\n", env)

    assert code == 0
    assert 'Run fake__record_note with {"note": "buy milk"}? [y/N]' in out
    assert f"Approved by {getpass.getuser()} at " in out and "Noted." in out
    assert f"Declined by {getpass.getuser()} at " in out
    approved = [m for m in model_server.requests[1].body["messages"] if m["role"] == "tool"]
    declined = [m for m in model_server.requests[3].body["messages"] if m["role"] == "tool"]
    assert approved[0]["content"] == "recorded note 1"
    assert "The user declined" in declined[0]["content"]
    # The answers went to the questions, not to the model as prompts.
    assert [m["content"] for m in model_server.requests[2].body["messages"] if m["role"] == "user"] == [
        "remember milk",
        "forget that",
    ]


async def test_tools_lists_the_tools_and_the_mcp_servers(model_server, tmp_path):
    code, out, _ = await chat(
        "/tools\n", environment(model_server, tmp_path, SEEDBOT_MCP_CONFIG=mcp_config())
    )
    assert code == 0
    assert "• fetch_url: on" in out and "• fake__record_note: on · asks before it runs" in out
    assert "MCP servers: fake: ok (7 tools)" in out
