"""`seedbot ask`: the real command, run as a subprocess against the fake model API."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from PIL import Image

from tests.fakes.mcp_server import mcp_config
from tests.fakes.model_server import Script, tool_call, tool_round
from tests.process import REPO, SEEDBOT, seedbot_environment


async def seedbot(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *SEEDBOT, *args, env=env, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode(), err.decode()


def environment(model_server, tmp_path: Path, **extra: str) -> dict[str, str]:
    return seedbot_environment(model_server, tmp_path / "ask.db", **extra)


async def test_streams_reasoning_then_answer_then_footer(model_server, tmp_path):
    model_server.enqueue(
        Script(reasoning="Weighing it up.", content="Forty-two.", usd=0.0033, cached_tokens=5)
    )
    code, out, _ = await seedbot(
        "ask", "What is the answer?", "--effort", "high", env=environment(model_server, tmp_path)
    )
    assert code == 0
    assert out.index("Weighing it up.") < out.index("Forty-two.")
    assert "high effort" in out and "$0.0033" in out and "first token" in out
    assert "tokens (3 reasoning)" in out and "5 prompt tokens cached" in out
    body = model_server.requests[0].body
    assert body["reasoning_effort"] == "high"
    assert body["max_tokens"] == 2048
    assert body["messages"][-1] == {"role": "user", "content": "What is the answer?"}


async def test_json_prints_one_structured_result(model_server, tmp_path):
    model_server.enqueue(Script(reasoning="r", content="Hello.", cached_tokens=3))
    code, out, _ = await seedbot("ask", "hi", "--json", env=environment(model_server, tmp_path))
    assert code == 0
    result = json.loads(out)
    assert result["content"] == "Hello." and result["reasoning"] == "r"
    assert result["usage"]["cached_tokens"] == 3
    assert result["request_id"] == model_server.requests[0].headers["X-Client-Request-Id"]


async def test_local_image_becomes_a_data_url_sniffed_from_its_bytes(model_server, tmp_path):
    picture = tmp_path / "holiday.txt"  # the name lies; the bytes are a PNG
    Image.new("RGB", (64, 32), "red").save(picture, format="PNG")
    code, _, _ = await seedbot(
        "ask", "describe", "--image", str(picture), env=environment(model_server, tmp_path)
    )
    assert code == 0
    parts = model_server.requests[0].body["messages"][-1]["content"]
    image = next(part for part in parts if part["type"] == "image_url")
    assert image["image_url"]["url"].startswith("data:image/png;base64,")


async def test_image_url_is_passed_through(model_server, tmp_path):
    url = "https://example.com/cat.jpg"
    code, _, _ = await seedbot("ask", "describe", "--image", url, env=environment(model_server, tmp_path))
    assert code == 0
    parts = model_server.requests[0].body["messages"][-1]["content"]
    assert {"type": "image_url", "image_url": {"url": url}} in parts


async def test_unreadable_file_gets_a_note_and_the_question_is_still_asked(model_server, tmp_path):
    code, out, err = await seedbot(
        "ask", "hi", "--image", str(tmp_path / "missing.png"), env=environment(model_server, tmp_path)
    )
    assert code == 0
    assert "missing.png" in err
    assert "Echo: hi" in out


async def test_missing_key_says_where_to_get_one(model_server, tmp_path):
    env = environment(model_server, tmp_path)
    del env["AIML_API_KEY"]
    code, _, err = await seedbot("ask", "hi", env=env)
    assert code == 3
    assert "aimlapi.com/app/keys" in err


async def test_api_error_and_usage_error_have_distinct_exit_codes(model_server, tmp_path):
    model_server.enqueue(Script(status=403, error_message="no credits"))
    code, out, _ = await seedbot("ask", "hi", env=environment(model_server, tmp_path))
    assert code == 4
    assert "out of credits" in out
    code, _, err = await seedbot("ask", env=environment(model_server, tmp_path))
    assert code == 2
    assert "usage" in err


async def test_cut_stream_keeps_the_partial_answer_and_says_so(model_server, tmp_path):
    model_server.enqueue(Script(content="The first half", chunk_chars=4, finish_reason=None))
    code, out, _ = await seedbot("ask", "hi", env=environment(model_server, tmp_path))
    assert code == 5
    assert "The first half" in out and "Interrupted" in out


async def test_bad_setting_is_one_clear_line(model_server, tmp_path):
    env = environment(model_server, tmp_path, SEEDBOT_DEFAULT_EFFORT="extreme")
    code, _, err = await seedbot("ask", "hi", env=env)
    assert code == 3
    assert "SEEDBOT_DEFAULT_EFFORT" in err
    assert "Traceback" not in err


async def test_video_re_encoding_shows_progress(model_server, tmp_path):
    from tests.core.media.samples import write_video

    clip = write_video(tmp_path / "long.mp4", seconds=3, width=160, height=120)
    env = environment(model_server, tmp_path, SEEDBOT_VIDEO_MAX_SECONDS="2")
    code, _, err = await seedbot("ask", "what happens?", "--video", str(clip), env=env)
    assert code == 0
    assert "Preparing long.mp4… " in err
    parts = model_server.requests[0].body["messages"][-1]["content"]
    assert any(part["type"] == "video_url" for part in parts)


async def test_ask_cannot_confirm_so_side_effects_are_declined(model_server, tmp_path):
    model_server.enqueue(
        tool_round(tool_call("fake__record_note", {"note": "x"})), Script(content="I could not note it.")
    )
    env = environment(model_server, tmp_path, SEEDBOT_MCP_CONFIG=mcp_config())
    code, out, _ = await seedbot("ask", "note x", env=env)
    assert code == 0 and "I could not note it." in out
    [result] = [m for m in model_server.requests[1].body["messages"] if m["role"] == "tool"]
    assert "cannot ask for confirmation" in result["content"]
