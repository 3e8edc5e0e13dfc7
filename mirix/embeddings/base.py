"""The embedding provider interface, its error, and the retry helper remote providers share."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar, runtime_checkable

T = TypeVar("T")


class EmbeddingError(Exception):
    """A provider is misconfigured, unreachable, or returned something unusable."""


@runtime_checkable
class EmbeddingProvider(Protocol):
    """Turns texts into vectors of ``dim`` floats.

    ``embed`` takes a whole batch in one call and returns one vector per text, in input order;
    an empty batch returns ``[]`` without touching the backend.
    """

    provider: str
    model: str
    dim: int

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...

    async def aclose(self) -> None: ...


Transient = tuple[type[BaseException], ...] | Callable[[BaseException], bool]


def _is_transient(exc: BaseException, transient: Transient) -> bool:
    if isinstance(transient, tuple):
        return isinstance(exc, transient)
    return transient(exc)


def backoff_delay(attempt: int, *, base_delay: float, max_delay: float) -> float:
    """Full-jitter exponential back-off for retry number ``attempt`` (0-based).

    Full jitter spreads the retries of many clients that failed together, so they do not hit a
    recovering service in lock-step.
    """
    ceiling = min(max_delay, base_delay * (2**attempt))
    return random.uniform(0, ceiling)  # noqa: S311 - timing jitter, not security


async def retry(
    operation: Callable[[], Awaitable[T]],
    *,
    transient: Transient,
    attempts: int = 4,
    base_delay: float = 0.5,
    max_delay: float = 8.0,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> T:
    """Await ``operation()`` up to ``attempts`` times, sleeping with jittered back-off in between.

    Only exceptions that ``transient`` marks (a tuple of types, or a predicate) are retried; any
    other exception, and the last transient one, propagates unchanged. ``operation`` is a
    zero-argument factory because an awaitable can be awaited only once.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for attempt in range(attempts):
        try:
            return await operation()
        except Exception as exc:
            if attempt == attempts - 1 or not _is_transient(exc, transient):
                raise
            await sleep(backoff_delay(attempt, base_delay=base_delay, max_delay=max_delay))
    raise AssertionError("unreachable")  # pragma: no cover
