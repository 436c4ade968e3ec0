"""slack-sdk clients pointed at `SLACK_API_URL`, and Slack's failures in the reply engine's terms.

Two clients share the bot token: `replies` never waits out a 429 itself (the reply engine's pacer
owns the pace of posts and edits, and coalesces text while it waits), `reads` does, once, for
everything else (history, users, files, ephemeral notices).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from core.config import Settings
from core.reply.surface import (
    TRANSIENT_RETRY_S,
    SurfaceError,
    SurfaceRateLimited,
    refused_or_retry,
    surface_errors,
)

API_TIMEOUT_S = 30
# A read that Slack asks to wait longer than this for is reported as rate limited instead: a command
# must not hang for a minute behind a busy workspace's history tier.
MAX_RATE_LIMIT_WAIT_S = 10.0


class CappedRateLimitRetry(AsyncRateLimitErrorRetryHandler):
    """Waits out a 429's Retry-After once, when it is short enough to be worth waiting for."""

    async def _can_retry_async(self, *, state, request, response=None, error=None) -> bool:  # type: ignore[no-untyped-def]
        if not await super()._can_retry_async(state=state, request=request, response=response, error=error):
            return False
        assert response is not None
        header = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), None)
        value = header[0] if isinstance(header, list) else header
        try:
            return value is None or float(value) <= MAX_RATE_LIMIT_WAIT_S
        except ValueError:
            return True


def web_client(settings: Settings, *, waits_out_rate_limits: bool) -> AsyncWebClient:
    if settings.slack_bot_token is None:
        raise ValueError("SLACK_BOT_TOKEN is not set")
    handlers = [AsyncConnectionErrorRetryHandler()]
    if waits_out_rate_limits:
        handlers.append(CappedRateLimitRetry(max_retry_count=1))
    return AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=API_TIMEOUT_S,
        retry_handlers=handlers,
    )


def error_code(error: SlackApiError) -> str:
    """Slack's machine-readable reason (`invalid_auth`, `ratelimited`, `not_in_channel`...)."""
    return str(error.response.get("error") or f"HTTP {error.response.status_code}")


def busy_note(error: SlackApiError) -> str | None:
    """What to tell someone whose request a 429 ended, or None when it was something else."""
    if not is_rate_limited(error):
        return None
    return f"Slack is rate limiting the bot here right now; try again in {retry_after(error):.0f} s."


def is_rate_limited(error: SlackApiError) -> bool:
    return error.response.status_code == 429 or error_code(error) == "ratelimited"


def retry_after(error: SlackApiError) -> float:
    header = error.response.headers.get("Retry-After") if error.response.headers else None
    try:
        return max(float(header), 0.0) if header is not None else TRANSIENT_RETRY_S
    except ValueError:
        return TRANSIENT_RETRY_S


def surface_error(error: BaseException) -> Exception:
    """Pause and retry (429, Slack's own trouble, the network) or give up on this message."""
    if isinstance(error, SlackApiError):
        status = 429 if is_rate_limited(error) else error.response.status_code
        return refused_or_retry(
            status, f"Slack refused the message ({error_code(error)})", retry_after=retry_after(error)
        )
    if isinstance(error, aiohttp.ClientError | OSError | TimeoutError):
        return SurfaceRateLimited(TRANSIENT_RETRY_S)
    return SurfaceError(str(error) or type(error).__name__)


def platform_errors() -> AbstractAsyncContextManager[None]:
    return surface_errors((SlackApiError, aiohttp.ClientError, OSError, TimeoutError), surface_error)
