"""Attachment downloads: one pooled HTTP client, bounded in bytes and time, redirects under a policy.

Adapters describe where a file lives and which headers a URL may carry (a Slack bot token only to
Slack); this module fetches it without ever holding more than `max_bytes` and turns every failure
into an `AttachmentError` whose text is a note for the reply.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx

from core.media.units import size_text
from core.models import AttachmentError

MAX_REDIRECTS = 3
TIMEOUT = httpx.Timeout(120.0, connect=10.0, read=30.0)
REDIRECTS = (301, 302, 303, 307, 308)

HeadersFor = Callable[[str], Mapping[str, str]]
"""The headers a request to this URL may carry (credentials only to hosts that should see them)."""


def no_headers(url: str) -> Mapping[str, str]:
    return {}


@dataclass(frozen=True, slots=True)
class Download:
    data: bytes
    content_type: str  # without parameters, lower case; "" when the server sent none


class Downloads:
    def __init__(self) -> None:
        # Redirects are followed by hand so that each hop's headers are chosen for its own host.
        self._client = httpx.AsyncClient(follow_redirects=False, timeout=TIMEOUT)

    async def fetch(
        self, url: str, name: str, max_bytes: int, *, headers_for: HeadersFor = no_headers
    ) -> Download:
        """The file at `url` (named `name` in notes), at most `max_bytes`; raises AttachmentError."""
        try:
            for _ in range(MAX_REDIRECTS + 1):
                async with self._client.stream("GET", url, headers=dict(headers_for(url))) as response:
                    if response.status_code in REDIRECTS and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    return await _read(response, name, max_bytes)
        except httpx.HTTPError as error:
            raise AttachmentError(f"{name} could not be downloaded ({type(error).__name__}).") from None
        raise AttachmentError(f"{name} could not be downloaded (too many redirects).")

    async def aclose(self) -> None:
        await self._client.aclose()


async def _read(response: httpx.Response, name: str, max_bytes: int) -> Download:
    if response.status_code != 200:
        raise AttachmentError(f"{name} could not be downloaded (HTTP {response.status_code}).")
    data = bytearray()
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) > max_bytes:
            raise AttachmentError(f"{name} is over the {size_text(max_bytes)} limit per file.")
    mime = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return Download(bytes(data), mime)
