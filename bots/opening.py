"""Opening the core for a command: one printed line and exit code 3 when it cannot be used."""

from __future__ import annotations

from typing import TextIO

from core.config import Settings
from core.llm import errors
from core.service import ChatService
from core.store import StoreError

EXIT_CONFIG = 3


async def open_service(settings: Settings, err: TextIO, *, needs_api_key: bool = True) -> ChatService | None:
    """The service, or None once `err` says why not (no API key, a database that cannot be opened)."""
    if needs_api_key and settings.aiml_api_key is None:
        print(errors.MissingAPIKey().describe(), file=err)
        return None
    try:
        return await ChatService.open(settings)
    except StoreError as error:
        print(f"database: {error}", file=err)
        return None
