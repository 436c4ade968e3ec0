"""Server-sent events are cut into `data` payloads however the bytes arrive."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from core.llm.sse import MAX_LINE_BYTES, iter_sse_data


async def feed(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def parse(*pieces: bytes) -> list[bytes]:
    return [data async for data in iter_sse_data(feed(*pieces))]


async def test_events_split_anywhere_across_reads_come_out_whole():
    wire = b'data: {"a": 1}\n\ndata: {"b": 2}\n\ndata: [DONE]\n\n'
    expected = [b'{"a": 1}', b'{"b": 2}', b"[DONE]"]
    for cut in range(1, len(wire)):
        assert await parse(wire[:cut], wire[cut:]) == expected
    assert await parse(*[bytes([byte]) for byte in wire]) == expected


async def test_crlf_comments_other_fields_and_multi_line_data():
    wire = b": keep-alive\r\n\r\nevent: message\r\nid: 7\r\ndata: one\r\ndata:two\r\n\r\n"
    assert await parse(wire) == [b"one\ntwo"]


async def test_an_event_cut_off_by_the_end_of_the_stream_is_dropped():
    assert await parse(b'data: {"whole": true}\n\ndata: {"cut": ') == [b'{"whole": true}']
    assert await parse(b"data: no blank line after me\n") == []


async def test_an_endless_line_is_refused_instead_of_buffered():
    endless = b"data: " + b"x" * (MAX_LINE_BYTES + 1)
    with pytest.raises(ValueError):
        await parse(endless[: MAX_LINE_BYTES // 2], endless[MAX_LINE_BYTES // 2 :])
