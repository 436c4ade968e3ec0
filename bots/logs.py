"""Logging for the service: one line per event (text or JSON lines) and no secret ever written.

`configure_logging(settings)` installs a single root handler. Its `SecretRedactor` filter rewrites
every record before any formatter sees it: the values of all `SecretStr` settings, plus anything
shaped like a bearer token or a Slack/Discord token, become `[REDACTED]` in the message, its
arguments, the exception text and string extras.

Extras are how a request id travels: `log.info("answered", extra={"request_id": rid})`.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from pydantic import SecretStr

from core.config import Settings

REDACTED = "[REDACTED]"
# A secret shorter than this cannot be told apart from ordinary words; masking it would garble every line.
MIN_SECRET_LEN = 4

_TOKEN_PATTERNS = (
    # Authorization header values.
    re.compile(r"\b(Bearer)\s+[A-Za-z0-9._~+/=-]{8,}"),
    # Slack tokens: bot/user/app-level/config/refresh.
    re.compile(r"\bxox[abposre]-[A-Za-z0-9-]+"),
    re.compile(r"\bxapp-[A-Za-z0-9-]+"),
    # Discord bot tokens: base64 user id, timestamp and HMAC joined by dots.
    re.compile(r"\b[MNO][A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,}"),
)

# Attributes every LogRecord has; anything else on a record came in through `extra=`.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
# Libraries that log every HTTP request at INFO; their URLs and chatter are not events of ours.
_QUIET_LOGGERS = ("httpx", "httpcore", "aiohttp.access", "websockets", "asyncio")


def secret_values(settings: Settings) -> list[str]:
    """The value of every `SecretStr` setting that is set, longest first."""
    values = {
        value.get_secret_value()
        for name in type(settings).model_fields
        if isinstance(value := getattr(settings, name), SecretStr)
    }
    return sorted((v for v in values if len(v) >= MIN_SECRET_LEN), key=len, reverse=True)


class SecretRedactor(logging.Filter):
    """Masks known secret values and token-shaped strings in a record, in place."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is masked whole.
        ordered = sorted({s for s in secrets if len(s) >= MIN_SECRET_LEN}, key=len, reverse=True)
        self._secrets = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def redact(self, text: str) -> str:
        if self._secrets is not None:
            text = self._secrets.sub(REDACTED, text)
        for pattern in _TOKEN_PATTERNS:
            text = pattern.sub(_mask_token, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(_message(record))
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            # Formatters print a cached exc_text instead of formatting exc_info again.
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for key, value in _extras(record).items():
            if not isinstance(value, bool | int | float | type(None)):
                setattr(record, key, self.redact(value if isinstance(value, str) else str(value)))
        return True


def _mask_token(match: re.Match[str]) -> str:
    scheme = match.group(1) if match.re.groups else None
    return f"{scheme} {REDACTED}" if scheme else REDACTED


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except (TypeError, ValueError):
        # Mismatched %-arguments: keep the template rather than lose the event.
        return str(record.msg)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in vars(record).items() if key not in _STANDARD_ATTRS}


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id and other extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": _message(record),
        }
        for key, value in _extras(record).items():
            entry.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message key=value ...` on one line; newlines are escaped, not emitted."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record), record.levelname, f"{record.name}:", _message(record)]
        extras = _extras(record)
        # The request id first: it is what an operator greps for.
        for key in sorted(extras, key=lambda k: (k != "request_id", k)):
            parts.append(f"{key}={extras[key]}")
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            parts.append(f"exc={record.exc_text}")
        if record.stack_info:
            parts.append(f"stack={record.stack_info}")
        return " ".join(parts).replace("\r", "").replace("\n", "\\n")


def configure_logging(settings: Settings, stream: TextIO | None = None) -> logging.Handler:
    """Route every logger to one handler on `stream` (stderr by default); calling again replaces it."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    handler.addFilter(SecretRedactor(secret_values(settings)))
    handler._seedbot = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_seedbot", False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    quiet = max(logging.WARNING, logging.getLevelName(settings.log_level))
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
    logging.captureWarnings(True)
    return handler
