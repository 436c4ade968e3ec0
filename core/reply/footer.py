"""The compact line under an answer: `medium effort · 4.2 s · 1,272 tokens (877 reasoning) · $0.0033`.

An answer that used tools shows the sum over all its model calls, and how many tool calls it made:
`medium effort · 6.1 s · 2,010 tokens · 3 tool calls · $0.0041`.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from core.llm.types import Usage
from core.money import format_usd

SEPARATOR = " · "


def format_footer(
    effort: str | None,
    elapsed_s: float | None,
    usage: Usage | None,
    usd: Decimal | None,
    notes: Sequence[str] = (),
    tool_calls: int = 0,
) -> str:
    """Plain text (the streamer styles it); any piece that is unknown is left out.

    Tokens are the completion tokens (what the answer cost to write, reasoning included), then the
    prompt tokens the API served from its cache, if any; `tool_calls` is left out when 0;
    `notes` are short extras such as "using the last 12 messages".
    """
    pieces: list[str] = []
    if effort:
        pieces.append(f"{effort} effort")
    if elapsed_s is not None:
        pieces.append(format_duration(elapsed_s))
    if usage is not None and usage.completion_tokens:
        tokens = f"{usage.completion_tokens:,} tokens"
        if usage.reasoning_tokens:
            tokens += f" ({usage.reasoning_tokens:,} reasoning)"
        pieces.append(tokens)
    if usage is not None and usage.cached_tokens:
        pieces.append(f"{usage.cached_tokens:,} prompt tokens cached")
    if tool_calls:
        pieces.append(f"{tool_calls} tool call{'s' if tool_calls != 1 else ''}")
    if usd is not None:
        pieces.append(format_usd(usd))
    pieces.extend(note for note in notes if note)
    return SEPARATOR.join(pieces)


def format_duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if round(seconds, 1) < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"
