"""`seedbot ask`: one question to the model from the terminal, streamed as it is written."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from bots.terminal.files import LocalFile
from core.config import Settings
from core.llm import errors
from core.llm.client import ChatClient
from core.llm.types import (
    ChatRequest,
    CompletionResult,
    ContentDelta,
    ContentPart,
    Effort,
    ImagePart,
    ImageURL,
    ReasoningDelta,
    SystemMessage,
    TextPart,
    UserMessage,
    VideoPart,
    VideoURL,
)
from core.media import MediaPipeline, MediaProgress
from core.reply.footer import format_footer

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_API = 4
EXIT_INTERRUPTED = 5

DIM, RESET = "\x1b[2m", "\x1b[0m"


def _is_url(value: str) -> bool:
    return value.startswith(("http://", "https://", "data:"))


async def build_parts(
    settings: Settings, prompt: str, images: Sequence[str], videos: Sequence[str], err: TextIO
) -> tuple[list[ContentPart], list[str]]:
    """The user message's parts: the prompt, URLs as given, local files through the media pipeline."""
    parts: list[ContentPart] = [TextPart(text=prompt)]
    parts += [ImagePart(image_url=ImageURL(url=url)) for url in images if _is_url(url)]
    parts += [VideoPart(video_url=VideoURL(url=url)) for url in videos if _is_url(url)]
    local = [LocalFile(Path(path)) for path in [*images, *videos] if not _is_url(path)]
    if not local:
        return parts, []
    shown: list[str] = []

    def show_progress(progress: MediaProgress) -> None:
        shown.append(progress.name)
        print(f"\rPreparing {progress.name}… {progress.fraction:.0%}", end="", file=err, flush=True)

    prepared = await MediaPipeline(settings).prepare(local, on_progress=show_progress)
    if shown:
        print(file=err)
    return parts + prepared.parts, prepared.notes


async def ask(
    settings: Settings,
    prompt: str,
    *,
    images: Sequence[str] = (),
    videos: Sequence[str] = (),
    effort: Effort | None = None,
    as_json: bool = False,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    if settings.aiml_api_key is None:
        print(errors.MissingAPIKey().describe(), file=err)
        return EXIT_CONFIG
    parts, notes = await build_parts(settings, prompt, images, videos, err)
    for note in notes:
        print(f"note: {note}", file=err)
    effort = effort or settings.default_effort
    request = ChatRequest(
        model=settings.model,
        messages=[SystemMessage(content=settings.system_prompt), UserMessage(content=parts)],
        max_tokens=settings.max_tokens,
        reasoning_effort=effort,
    )
    styled = out.isatty() and not as_json
    client = ChatClient(settings)
    started = time.monotonic()
    error: errors.ModelAPIError | None = None
    result: CompletionResult | None = None
    try:
        stream = client.stream(request)
        result = stream.result
        async with stream:
            in_reasoning = False
            async for event in stream:
                if as_json:
                    continue
                if isinstance(event, ReasoningDelta):
                    if not in_reasoning:
                        out.write(DIM if styled else "[reasoning] ")
                        in_reasoning = True
                    out.write(event.text)
                elif isinstance(event, ContentDelta):
                    if in_reasoning:
                        out.write((RESET if styled else "") + "\n\n")
                        in_reasoning = False
                    out.write(event.text)
                out.flush()
    except errors.ModelAPIError as caught:
        error = caught
    finally:
        await client.aclose()
    assert result is not None
    elapsed = time.monotonic() - started
    if as_json:
        print(json.dumps(_as_json(result, effort, notes, error), ensure_ascii=False), file=out)
    else:
        if error is not None:
            print(f"\n\n⚠️ {'Interrupted: ' if result.content else ''}{error}", file=out)
        ttft = f"first token {result.time_to_first_token_s:.2f} s · " if result.time_to_first_token_s else ""
        footer = format_footer(effort=effort, elapsed_s=elapsed, usage=result.usage, usd=result.cost.usd)
        print(f"\n\n{DIM if styled else ''}{ttft}{footer}{RESET if styled else ''}", file=out)
    if error is None:
        return EXIT_OK
    return EXIT_INTERRUPTED if result.content else EXIT_API


def _as_json(
    result: CompletionResult, effort: str, notes: list[str], error: errors.ModelAPIError | None
) -> dict[str, object]:
    usage = result.usage
    return {
        "request_id": result.request_id,
        "model": result.model,
        "effort": effort,
        "content": result.content,
        "reasoning": result.reasoning,
        "finish_reason": result.finish_reason,
        "interrupted": result.interrupted,
        "error": str(error) if error else None,
        "usage": None
        if usage is None
        else {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
            "cached_tokens": usage.cached_tokens,
        },
        "usd": str(result.cost.usd) if result.cost.usd is not None else None,
        "time_to_first_token_s": result.time_to_first_token_s,
        "total_s": result.total_s,
        "notes": notes,
    }
