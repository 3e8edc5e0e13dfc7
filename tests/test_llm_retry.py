"""The retry policy and the status → error mapping, without a network."""

from __future__ import annotations

import email.utils
import time

import pytest

from mirix.llm.errors import (
    LLMContextWindowError,
    LLMError,
    LLMProviderError,
    LLMRateLimitError,
    LLMTimeoutError,
    error_for_status,
    parse_retry_after,
)
from mirix.llm.retry import RetryPolicy, call_with_retries


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def failing(*errors: Exception, result: str = "done"):
    remaining = list(errors)
    calls = []

    async def operation() -> str:
        calls.append(1)
        if remaining:
            raise remaining.pop(0)
        return result

    return operation, calls


def test_full_jitter_stays_under_the_exponential_ceiling() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=0.5, max_delay=4.0)
    for retry_number, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (8, 4.0)]:
        samples = [policy.backoff(retry_number) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling / 2  # spread over the range, not pinned at zero


def test_invalid_policies_are_rejected() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(base_delay=-1)


async def test_transient_errors_are_retried_until_success() -> None:
    sleeps = Sleeps()
    operation, calls = failing(LLMTimeoutError("slow"), LLMProviderError("boom", status=503))
    result = await call_with_retries(operation, RetryPolicy(max_attempts=3, base_delay=0.1), sleep=sleeps)

    assert result == "done" and len(calls) == 3
    assert len(sleeps.delays) == 2
    assert 0 <= sleeps.delays[0] <= 0.1 and 0 <= sleeps.delays[1] <= 0.2


async def test_attempts_run_out_and_the_last_error_propagates() -> None:
    sleeps = Sleeps()
    last = LLMProviderError("third", status=500)
    operation, calls = failing(LLMProviderError("first", status=500), LLMProviderError("second", status=502), last)
    with pytest.raises(LLMProviderError) as raised:
        await call_with_retries(operation, RetryPolicy(max_attempts=3), sleep=sleeps)

    assert raised.value is last and len(calls) == 3 and len(sleeps.delays) == 2


async def test_non_transient_errors_and_other_exceptions_are_not_retried() -> None:
    sleeps = Sleeps()
    operation, calls = failing(LLMProviderError("bad request", status=400))
    with pytest.raises(LLMProviderError):
        await call_with_retries(operation, RetryPolicy(max_attempts=5), sleep=sleeps)
    bug, bug_calls = failing(KeyError("bug"))
    with pytest.raises(KeyError):
        await call_with_retries(bug, RetryPolicy(max_attempts=5), sleep=sleeps)

    assert len(calls) == 1 and len(bug_calls) == 1 and sleeps.delays == []


async def test_retry_after_is_honoured_up_to_max_delay() -> None:
    sleeps = Sleeps()
    operation, _ = failing(
        LLMRateLimitError("wait a bit", retry_after=0.25), LLMRateLimitError("wait long", retry_after=120)
    )
    await call_with_retries(operation, RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=5), sleep=sleeps)

    assert sleeps.delays == [0.25, 5]


@pytest.mark.parametrize(
    ("status", "transient"),
    [(400, False), (401, False), (403, False), (404, False), (422, False), (408, True), (409, True), (429, True)]
    + [(500, True), (502, True), (503, True), (529, True)],
)
def test_status_decides_transience(status: int, transient: bool) -> None:
    error = error_for_status(status, "x", provider="openai", model="m")
    assert error.transient is transient and error.status == status
    assert isinstance(error, LLMRateLimitError) is (status == 429)


def test_provider_verdict_header_overrides_the_status() -> None:
    assert error_for_status(500, "x", provider="p", model="m", headers={"x-should-retry": "false"}).transient is False
    assert error_for_status(400, "x", provider="p", model="m", headers={"x-should-retry": "true"}).transient is True


def test_context_overflow_is_its_own_error() -> None:
    error = error_for_status(400, "prompt is too long: 250000 tokens > 200000 maximum", provider="anthropic", model="c")
    assert isinstance(error, LLMContextWindowError) and not error.transient
    assert not isinstance(error_for_status(400, "bad field", provider="p", model="m"), LLMContextWindowError)


def test_retry_after_headers() -> None:
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "1"}) == 0.25
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert 25 < (parse_retry_after({"retry-after": future}) or 0) <= 30
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None and parse_retry_after(None) is None
    assert error_for_status(429, "x", provider="p", model="m", headers={"retry-after": "3"}).retry_after == 3.0


def test_errors_carry_provider_and_model() -> None:
    error = LLMError("nope", provider="anthropic", model="claude")
    assert (error.provider, error.model, error.transient, str(error)) == ("anthropic", "claude", False, "nope")
    assert LLMTimeoutError("t").transient and LLMRateLimitError("r").status == 429
