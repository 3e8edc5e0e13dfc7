"""The LLM client interface, the usage record every call produces, and the errors (re-exported)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias, runtime_checkable

from mirix.llm.errors import (
    LLMBadResponseError,
    LLMConfigurationError,
    LLMConnectionError,
    LLMContextWindowError,
    LLMError,
    LLMProviderError,
    LLMRateLimitError,
    LLMTimeoutError,
)
from mirix.llm.types import Completion, Message, StreamEvent, ToolChoice, ToolSpec

__all__ = [
    "CallRecord",
    "LLMBadResponseError",
    "LLMClient",
    "LLMConfigurationError",
    "LLMConnectionError",
    "LLMContextWindowError",
    "LLMError",
    "LLMProviderError",
    "LLMRateLimitError",
    "LLMTimeoutError",
    "Recorder",
]


@runtime_checkable
class LLMClient(Protocol):
    """One model behind one configuration. Safe to share between concurrent tasks.

    ``temperature``/``max_tokens`` override the configuration's for one call. ``metadata`` is passed
    untouched to the recorder (agent id, organisation, ...) so usage rows can be attributed.
    """

    provider: str
    model: str

    async def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] | None = None,
        tool_choice: ToolChoice = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> Completion: ...

    def stream(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] | None = None,
        tool_choice: ToolChoice = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Deltas as they arrive, then one final Completion. Retries happen only before the first event."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class CallRecord:
    """Usage of one logical call (all its attempts), successful or not; the server stores these as steps."""

    provider: str
    model: str
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int
    error: str | None = None
    error_type: str | None = None
    attempts: int = 1
    streamed: bool = False
    finish_reason: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


Recorder: TypeAlias = Callable[[CallRecord], Awaitable[None]]
