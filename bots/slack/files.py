"""Slack files as the core's `AttachmentSource`: fetched on demand, with the bot token.

Private files (`url_private`) need the bot token, so the token is only ever sent to Slack's own
hosts over HTTPS, or to the host of `SLACK_API_URL` (a proxy or test double): a file that claims to
live elsewhere is not fetched, and redirects are followed by hand so the token never follows one
off Slack. Some events carry only a file's id (`file_access: check_file_info`); `files.info` fills in
the rest. Without the `files:read` scope Slack answers a download with its sign-in page (HTTP 200):
that is recognised and the note tells the user which scope an admin must add.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack.api import error_code
from core.config import Settings
from core.media.download import Downloads
from core.media.sniff import looks_like_html
from core.media.units import size_text
from core.models import AttachmentError

log = logging.getLogger(__name__)

SLACK_FILE_DOMAINS = ("slack.com", "slack-edge.com", "slack-files.com", "slack-gov.com")
FILES_READ_FIX = (
    "{name} could not be read: Slack sent its sign-in page because the app lacks the `files:read` "
    "scope. An admin must add `files:read` under OAuth & Permissions and reinstall the app."
)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


class SlackFiles:
    """Downloads for one app: one HTTP session, the bot token and where it may be sent."""

    def __init__(self, settings: Settings, client: AsyncWebClient, downloads: Downloads):
        assert settings.slack_bot_token is not None
        self._token = settings.slack_bot_token.get_secret_value()
        self._api_origin = _origin(settings.slack_api_url)
        self._client = client
        self._downloads = downloads

    def may_send_token(self, url: str) -> bool:
        scheme, host, port = _origin(url)
        if (scheme, host, port) == self._api_origin:
            return True
        on_slack = any(host == domain or host.endswith("." + domain) for domain in SLACK_FILE_DOMAINS)
        return scheme == "https" and on_slack

    def sources(self, files: Iterable[Mapping[str, Any]] | None) -> list[SlackFile]:
        return [SlackFile(file, self) for file in files or () if file.get("id")]

    async def info(self, file_id: str, name: str) -> dict[str, Any]:
        try:
            response = await self._client.files_info(file=file_id)
        except SlackApiError as error:
            code = error_code(error)
            if code == "missing_scope":
                raise AttachmentError(FILES_READ_FIX.format(name=name)) from None
            if code in ("file_not_found", "file_deleted"):
                raise AttachmentError(f"{name} is no longer available on Slack.") from None
            raise AttachmentError(f"{name} could not be looked up on Slack ({code}).") from None
        return dict(response["file"])

    async def download(self, url: str, name: str, max_bytes: int, *, html_expected: bool) -> bytes:
        if not self.may_send_token(url):
            raise AttachmentError(f"{name} is not stored on Slack, so it was not downloaded.")
        got = await self._downloads.fetch(url, name, max_bytes, headers_for=self._headers)
        if not html_expected and (got.content_type == "text/html" or looks_like_html(got.data)):
            raise AttachmentError(FILES_READ_FIX.format(name=name))
        return got.data

    def _headers(self, url: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"} if self.may_send_token(url) else {}


class SlackFile:
    """One file shared in a message; `read()` fetches it (after `files.info` when Slack asks for that)."""

    def __init__(self, file: Mapping[str, Any], files: SlackFiles):
        self._file = dict(file)
        self._files = files
        self.name: str = str(file.get("name") or file.get("title") or f"file {file.get('id')}")
        size = file.get("size")
        self.declared_size: int | None = int(size) if isinstance(size, int) else None
        self.declared_mime: str | None = file.get("mimetype") or None
        self.source: str = str(file.get("id"))
        self.cache_key = f"slack:{self.source}"  # a file id never names other bytes

    async def read(self, max_bytes: int) -> bytes:
        file = self._file
        if file.get("file_access") == "check_file_info" or not file.get("url_private"):
            file = await self._files.info(self.source, self.name)
            self.name = str(file.get("name") or self.name)
        if file.get("mode") == "external":
            raise AttachmentError(f"{self.name} is a link to a file stored outside Slack; it was not read.")
        if file.get("mode") == "tombstone" or file.get("file_access") == "access_denied":
            raise AttachmentError(f"{self.name} is no longer available on Slack.")
        size = file.get("size")
        if isinstance(size, int) and size > max_bytes:  # known only now when the event did not say
            raise AttachmentError(f"{self.name} is {size_text(size)}, over the {size_text(max_bytes)} limit.")
        url = str(file.get("url_private_download") or file.get("url_private") or "")
        if not url:
            raise AttachmentError(f"{self.name} has no download link on Slack.")
        mime = str(file.get("mimetype") or "")
        return await self._files.download(url, self.name, max_bytes, html_expected=mime == "text/html")
