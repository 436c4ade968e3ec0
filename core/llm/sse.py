"""Incremental server-sent-events parsing: bytes in, `data` payloads out.

Only what chat-completion streams use: `data:` fields joined per event, comments and other fields
ignored, LF or CRLF line endings. An event is complete only at its blank line: one still open when the
stream ends was cut off, and is dropped (the caller sees a stream that ended early).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

# A line longer than this is not a chat-completion chunk; refuse it rather than buffer without bound.
MAX_LINE_BYTES = 8 * 1024 * 1024


async def iter_sse_data(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """Yield the `data` of each event as soon as its terminating blank line has arrived.

    Raises ValueError for a line over MAX_LINE_BYTES.
    """
    pending = b""
    data: list[bytes] = []
    async for chunk in chunks:
        if pending:
            chunk = pending + chunk
        lines = chunk.split(b"\n")
        pending = lines.pop()
        if len(pending) > MAX_LINE_BYTES:
            raise ValueError(f"a server-sent event line longer than {MAX_LINE_BYTES} bytes")
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if data:
                    yield data[0] if len(data) == 1 else b"\n".join(data)
                    data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)
            # Comments (":keep-alive") and `event:`/`id:`/`retry:` fields carry nothing we use.
