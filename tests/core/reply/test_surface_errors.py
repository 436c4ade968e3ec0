"""A platform's failures in the reply engine's terms: wait and retry, or give up on that message."""

from __future__ import annotations

import pytest

from core.reply.surface import (
    TRANSIENT_RETRY_S,
    SurfaceError,
    SurfaceRateLimited,
    refused_or_retry,
    surface_errors,
)


def test_a_429_waits_its_retry_after_a_5xx_a_moment_and_anything_else_refuses_for_good():
    limited = refused_or_retry(429, "refused", retry_after=7.5)
    assert isinstance(limited, SurfaceRateLimited) and limited.retry_after == 7.5
    trouble = refused_or_retry(503, "refused", retry_after=7.5)
    assert isinstance(trouble, SurfaceRateLimited) and trouble.retry_after == TRANSIENT_RETRY_S
    refused = refused_or_retry(403, "Refused the message (403: Missing Access)", retry_after=7.5)
    assert isinstance(refused, SurfaceError) and str(refused) == "Refused the message (403: Missing Access)"


class LibraryFailure(Exception):
    pass


async def test_the_library_failures_named_are_raised_as_the_engines_and_others_pass_through():
    def as_surface_error(error: BaseException) -> Exception:
        return SurfaceError(f"translated {error}")

    with pytest.raises(SurfaceError, match="translated boom") as raised:
        async with surface_errors((LibraryFailure,), as_surface_error):
            raise LibraryFailure("boom")
    assert isinstance(raised.value.__cause__, LibraryFailure)
    with pytest.raises(KeyError):
        async with surface_errors((LibraryFailure,), as_surface_error):
            raise KeyError("a bug is not the platform's failure")
