"""One exception per model-API failure a chat user must understand.

`str(error)` is always a short sentence fit to show in chat; it never contains a secret.
"""

from __future__ import annotations


class ModelAPIError(Exception):
    """Base class: the model API could not answer."""

    user_message = "The model service could not answer."
    retryable = False

    def __init__(
        self, detail: str | None = None, *, status: int | None = None, request_id: str | None = None
    ):
        self.detail = detail
        self.status = status
        self.request_id = request_id
        super().__init__(self.describe())

    def describe(self) -> str:
        return f"{self.user_message} ({self.detail})" if self.detail else self.user_message


class BadRequest(ModelAPIError):
    user_message = "The model service rejected the request."


class InvalidAPIKey(ModelAPIError):
    user_message = "The AI/ML API key is invalid or disabled; an admin must check AIML_API_KEY."


class OutOfCredits(ModelAPIError):
    user_message = "The AI/ML API account is out of credits; an admin must top it up."


class RateLimited(ModelAPIError):
    user_message = "The model service is rate limiting us; please try again in a moment."
    retryable = True

    def __init__(self, detail: str | None = None, *, retry_after: float | None = None, **kwargs):
        self.retry_after = retry_after
        super().__init__(detail, **kwargs)


class UpstreamUnavailable(ModelAPIError):
    user_message = "The model service is unavailable right now; please try again shortly."
    retryable = True


class UpstreamTimeout(ModelAPIError):
    user_message = "The model service took too long to answer."
    retryable = True


class NetworkError(ModelAPIError):
    user_message = "Could not reach the model service."
    retryable = True


class StreamStalled(ModelAPIError):
    """No chunk arrived within the idle timeout after the stream had started."""

    user_message = "The model stopped sending its answer."


class StreamInterrupted(ModelAPIError):
    """The stream broke or ended before the model said it was finished."""

    user_message = "The answer was cut off before the model finished."


class MalformedResponse(ModelAPIError):
    user_message = "The model service sent a response we could not read."


class MissingAPIKey(ModelAPIError):
    user_message = "AIML_API_KEY is not set; create a key at https://aimlapi.com/app/keys and export it."
