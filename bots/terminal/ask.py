"""`seedbot ask`: one question from the terminal, answered through the ChatService like any other.

So it is budgeted, lands in the ledger (and `/cost`), and says what went wrong in the same words.
The answer goes to standard output as it is written (reasoning dimmed on a terminal); progress and
notes about files go to standard error.
"""

from __future__ import annotations

import getpass
import json
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, TextIO

from bots.opening import open_service
from bots.terminal.files import LocalFile, PipedInput
from bots.terminal.surface import DIM, RESET, TerminalSurface
from core.answer import AnswerOutcome
from core.config import Settings
from core.llm.types import ContentPart, Effort, ImagePart, ImageURL, VideoPart, VideoURL
from core.models import ConversationKey, Turn

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_API = 4
EXIT_INTERRUPTED = 5
EXIT_CODES = {"complete": EXIT_OK, "interrupted": EXIT_INTERRUPTED, "stopped": EXIT_INTERRUPTED}


def _is_url(value: str) -> bool:
    return value.startswith(("http://", "https://", "data:"))


def linked_parts(images: Sequence[str], videos: Sequence[str]) -> list[ContentPart]:
    """Media given as URLs: the model fetches them itself."""
    parts: list[ContentPart] = [ImagePart(image_url=ImageURL(url=url)) for url in images if _is_url(url)]
    return parts + [VideoPart(video_url=VideoURL(url=url)) for url in videos if _is_url(url)]


async def ask(
    settings: Settings,
    prompt: str,
    *,
    images: Sequence[str] = (),
    videos: Sequence[str] = (),
    files: Sequence[str] = (),
    effort: Effort | None = None,
    as_json: bool = False,
    stdin: BinaryIO | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """One question. Standard input, when it is not a terminal (`git diff | seedbot ask "review
    this"`), comes along as one more file, sniffed by its bytes like any other."""
    service = await open_service(settings, err)
    if service is None:
        return EXIT_CONFIG
    user = getpass.getuser()
    effort = effort or settings.default_effort
    piped = await PipedInput.read_from(
        sys.stdin.buffer if stdin is None else stdin, service.media.max_file_bytes
    )
    turn = Turn(
        # Each question is a conversation of its own; its cost is the person's, as in `seedbot chat`.
        key=ConversationKey("terminal", "local", user, f"ask-{uuid.uuid4().hex}"),
        user_id=user,
        user_name=user,
        text=prompt,
        attachments=[
            *(LocalFile(Path(path)) for path in [*images, *videos, *files] if not _is_url(path)),
            *([piped] if piped is not None else []),
        ],
        linked=linked_parts(images, videos),
        effort=effort,
    )
    try:
        outcome = await service.answer(turn, TerminalSurface(out, status_out=err, quiet=as_json))
    finally:
        await service.close()
    for note in outcome.notes:
        print(f"note: {note}", file=err)
    if as_json:
        print(json.dumps(_as_json(outcome, effort), ensure_ascii=False), file=out)
    elif outcome.result is not None and outcome.result.time_to_first_token_s is not None:
        styled = out.isatty()
        ttft = f"first token {outcome.result.time_to_first_token_s:.2f} s"
        print(f"{DIM if styled else ''}{ttft}{RESET if styled else ''}", file=out)
    if outcome.status in EXIT_CODES:
        return EXIT_CODES[outcome.status]
    return EXIT_INTERRUPTED if outcome.text else EXIT_API


def _as_json(outcome: AnswerOutcome, effort: str) -> dict[str, object]:
    result = outcome.result
    if result is None:  # never reached the model: refused by a budget, too long
        return {"content": "", "effort": effort, "error": outcome.status, "notes": list(outcome.notes)}
    usage = result.usage
    return {
        "request_id": result.request_id,
        "model": result.model,
        "effort": effort,
        "content": result.content,
        "reasoning": result.reasoning,
        "finish_reason": result.finish_reason,
        "interrupted": result.interrupted,
        "status": outcome.status,
        "usage": None
        if usage is None
        else {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
            "cached_tokens": usage.cached_tokens,
        },
        "usd": str(outcome.usd) if outcome.usd is not None else None,
        "time_to_first_token_s": result.time_to_first_token_s,
        "total_s": result.total_s,
        "notes": list(outcome.notes),
    }
