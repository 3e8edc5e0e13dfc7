"""The one retry policy for LLM calls (the SDKs' own retries are switched off).

Exponential back-off with full jitter, so many workers that failed together do not come back in
lock-step; a provider's Retry-After is honoured instead of the back-off, up to ``max_delay``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from mirix.llm.errors import LLMError

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``max_attempts`` counts the first try; delays are in seconds."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 10.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("retry delays must not be negative")

    def backoff(self, retry_number: int) -> float:
        """Full jitter for retry ``retry_number`` (1 = the first retry): uniform in [0, min(cap, base·2^(n-1))]."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (retry_number - 1)))
        return random.uniform(0, ceiling)  # noqa: S311 - timing jitter, not security

    def delay_for(self, error: LLMError, retry_number: int) -> float:
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            # Waiting longer than max_delay would stall the caller; asking sooner at least lets the
            # attempt budget decide rather than a provider-chosen sleep.
            return min(max(0.0, float(retry_after)), self.max_delay)
        return self.backoff(retry_number)


NO_RETRY = RetryPolicy(max_attempts=1)


async def call_with_retries(
    operation: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> T:
    """Await ``operation()`` until it succeeds, fails with a non-transient LLMError, or attempts run out.

    Only ``LLMError``s marked ``transient`` are retried; anything else propagates at once.
    """
    retry_number = 0
    while True:
        try:
            return await operation()
        except LLMError as exc:
            retry_number += 1
            if not exc.transient or retry_number >= policy.max_attempts:
                raise
            delay = policy.delay_for(exc, retry_number)
            log.info(
                "LLM call failed (%s: %s); retry %d/%d in %.2fs",
                type(exc).__name__,
                exc.message,
                retry_number,
                policy.max_attempts - 1,
                delay,
            )
            await sleep(delay)
