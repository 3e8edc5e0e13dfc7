"""Provider-neutral LLM errors. Every SDK exception is translated into one of these at the adapter edge.

``transient`` tells the retry policy (and the agent loop) whether trying the same request again can
succeed: rate limits, timeouts, dropped connections and 5xx answers can; bad requests cannot.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping
from datetime import UTC
from typing import Any

# 408/409 are what OpenAI and Anthropic answer for a request that raced a lock or timed out
# server-side; their own SDKs retry them too.
_TRANSIENT_STATUSES = frozenset({408, 409, 429})

_CONTEXT_OVERFLOW = re.compile(
    r"context[_ ]length[_ ]exceeded|maximum context length|context window|prompt is too long"
    r"|exceeds the maximum number of tokens|input token count.*exceeds|too many (?:input )?tokens",
    re.IGNORECASE,
)


class LLMError(Exception):
    """Base of every LLM failure. ``provider``/``model`` say where it happened, when known."""

    transient: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        transient: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.model = model
        if transient is not None:
            self.transient = transient


class LLMConfigurationError(LLMError):
    """The configuration cannot work (missing API key, unsupported endpoint type, bad tool_choice)."""


class LLMTimeoutError(LLMError):
    transient = True


class LLMConnectionError(LLMError):
    """The provider could not be reached, or the connection dropped before an answer."""

    transient = True


class LLMProviderError(LLMError):
    """The provider answered with an error status (``status`` is None for an error event mid-stream)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None,
        provider: str | None = None,
        model: str | None = None,
        retry_after: float | None = None,
        transient: bool | None = None,
    ) -> None:
        if transient is None:
            transient = status is not None and (status in _TRANSIENT_STATUSES or status >= 500)
        super().__init__(message, provider=provider, model=model, transient=transient)
        self.status = status
        self.retry_after = retry_after


class LLMRateLimitError(LLMProviderError):
    """HTTP 429; ``retry_after`` (seconds) is set when the provider said how long to wait."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("status", 429)
        kwargs.setdefault("transient", True)
        super().__init__(message, retry_after=retry_after, **kwargs)


class LLMContextWindowError(LLMProviderError):
    """The prompt does not fit the model's context window: summarise or trim, do not retry as is."""


class LLMBadResponseError(LLMError):
    """The provider answered 2xx but the answer is unusable (no choices, truncated stream, bad shape)."""


def error_for_status(
    status: int,
    message: str,
    *,
    provider: str | None,
    model: str | None,
    headers: Mapping[str, str] | None = None,
    retry_after: float | None = None,
) -> LLMProviderError:
    """The error for an HTTP error status; headers supply Retry-After and ``x-should-retry``."""
    if retry_after is None:
        retry_after = parse_retry_after(headers)
    transient: bool | None = None
    should_retry = (headers or {}).get("x-should-retry")
    if should_retry in ("true", "false"):
        # The provider's explicit verdict beats our guess from the status code.
        transient = should_retry == "true"
    common: dict[str, Any] = {"provider": provider, "model": model, "retry_after": retry_after}
    if status == 429:
        return LLMRateLimitError(message, transient=True if transient is None else transient, **common)
    if status in (400, 413) and _CONTEXT_OVERFLOW.search(message or ""):
        return LLMContextWindowError(message, status=status, transient=False, **common)
    return LLMProviderError(message, status=status, transient=transient, **common)


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, or ``retry-after`` as seconds or an HTTP date."""
    if not headers:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - time.time())
