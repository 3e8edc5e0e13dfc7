"""What every adapter shares: timeouts, retries, usage recording, tool-call recovery from text.

An adapter implements one attempt (``_complete_once`` / ``_stream_once``) in its provider's format
and translates its SDK's exceptions; ``BaseChatClient`` turns that into the ``LLMClient`` contract.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TypeVar

from mirix.llm.base import CallRecord, Recorder
from mirix.llm.errors import (
    LLMBadResponseError,
    LLMConfigurationError,
    LLMConnectionError,
    LLMError,
    LLMTimeoutError,
)
from mirix.llm.retry import RetryPolicy, call_with_retries
from mirix.llm.toolparse import extract_tool_calls
from mirix.llm.types import (
    AssistantMessage,
    Completion,
    FinishReason,
    Message,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    ToolSpec,
    Usage,
)

T = TypeVar("T")
log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """Per-client behaviour; ``temperature``/``max_tokens`` are the defaults calls may override."""

    timeout: float = DEFAULT_TIMEOUT
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    recorder: Recorder | None = None
    temperature: float | None = None
    max_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class ChatRequest:
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...]
    tool_choice: ToolChoice
    temperature: float | None
    max_tokens: int | None

    @property
    def forced_tool(self) -> str | None:
        return self.tool_choice.get("name") if isinstance(self.tool_choice, Mapping) else None


@dataclass(slots=True)
class ProviderResult:
    """One provider answer, before timing and text tool-call recovery."""

    text: str
    tool_calls: list[ToolCall]
    finish_reason: FinishReason
    raw_finish_reason: str | None
    usage: Usage
    model: str | None = None


class BaseChatClient(ABC):
    provider: str
    model: str

    def __init__(self, sdk: Any, *, model: str, provider: str, options: ClientOptions, owns_sdk: bool = False) -> None:
        self.sdk = sdk
        self.model = model
        self.provider = provider
        self.options = options
        self._owns_sdk = owns_sdk

    # -- adapter hooks ---------------------------------------------------------------------

    @abstractmethod
    async def _complete_once(self, request: ChatRequest) -> ProviderResult: ...

    @abstractmethod
    def _stream_once(self, request: ChatRequest) -> AsyncIterator[TextDelta | ToolCallDelta | ProviderResult]:
        """Deltas, then exactly one ProviderResult."""

    @abstractmethod
    def _translate(self, exc: Exception) -> LLMError | None:
        """The LLMError for an SDK exception, or None if it is not one this adapter knows."""

    @staticmethod
    @abstractmethod
    async def close_sdk(sdk: Any) -> None:
        """Close an SDK client this adapter type built (used by the registry at shutdown)."""

    # -- LLMClient -------------------------------------------------------------------------

    async def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] | None = None,
        tool_choice: ToolChoice = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> Completion:
        request = self._prepare(messages, tools, tool_choice, temperature, max_tokens)
        started = time.monotonic()
        attempts = 0

        async def attempt() -> ProviderResult:
            nonlocal attempts
            attempts += 1
            return await self._guarded(self._complete_once(request))

        try:
            result = await call_with_retries(attempt, self.options.retry)
        except Exception as exc:
            await self._record_failure(exc, started, attempts, streamed=False, metadata=metadata)
            raise
        completion = self._finish(result, request, started)
        await self._record_success(completion, attempts, streamed=False, metadata=metadata)
        return completion

    async def stream(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] | None = None,
        tool_choice: ToolChoice = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[StreamEvent]:
        request = self._prepare(messages, tools, tool_choice, temperature, max_tokens)
        started = time.monotonic()
        attempts = 0
        recorded = False

        async def open_stream() -> tuple[AsyncIterator[Any], Any]:
            # The first event is read inside the retry loop: HTTP errors surface there, and until
            # something was yielded a retry is invisible to the consumer.
            nonlocal attempts
            attempts += 1
            events = self._stream_once(request)
            try:
                first = await self._guarded(anext(events))
            except BaseException:
                await _aclose(events)
                raise
            return events, first

        try:
            events, item = await call_with_retries(open_stream, self.options.retry)
            try:
                while not isinstance(item, ProviderResult):
                    yield item
                    item = await self._guarded(anext(events))
            finally:
                await _aclose(events)
            completion = self._finish(item, request, started)
            recorded = True
            await self._record_success(completion, attempts, streamed=True, metadata=metadata)
            yield completion
        except Exception as exc:
            if not recorded:
                recorded = True
                await self._record_failure(exc, started, attempts, streamed=True, metadata=metadata)
            raise
        finally:
            if not recorded:  # the consumer stopped early, or the task was cancelled
                await self._record_failure(
                    None, started, attempts, streamed=True, metadata=metadata, message="stream closed before completion"
                )

    async def aclose(self) -> None:
        """Close the SDK client if this client owns it (clients from a registry share theirs)."""
        if self._owns_sdk:
            self._owns_sdk = False
            await self.close_sdk(self.sdk)

    # -- shared machinery ------------------------------------------------------------------

    def _prepare(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] | None,
        tool_choice: ToolChoice,
        temperature: float | None,
        max_tokens: int | None,
    ) -> ChatRequest:
        if not messages:
            raise LLMError("at least one message is required", provider=self.provider, model=self.model)
        tools = tuple(tools or ())
        names = {t.name for t in tools}
        if isinstance(tool_choice, Mapping):
            forced = tool_choice.get("name")
            if forced not in names:
                raise LLMConfigurationError(
                    f"tool_choice names {forced!r}, which is not among the tools offered",
                    provider=self.provider,
                    model=self.model,
                )
        elif tool_choice == "required" and not tools:
            raise LLMConfigurationError("tool_choice 'required' needs tools", provider=self.provider, model=self.model)
        elif tool_choice not in (None, "auto", "required", "none"):
            raise LLMConfigurationError(
                f"unknown tool_choice {tool_choice!r}", provider=self.provider, model=self.model
            )
        return ChatRequest(
            messages=tuple(messages),
            tools=tools,
            tool_choice=tool_choice if tools else None,
            temperature=self.options.temperature if temperature is None else temperature,
            max_tokens=self.options.max_tokens if max_tokens is None else max_tokens,
        )

    async def _guarded(self, awaitable: Awaitable[T]) -> T:
        """Await one provider step within the timeout, translating every known failure to an LLMError."""
        try:
            async with asyncio.timeout(self.options.timeout):
                return await awaitable
        except LLMError:
            raise
        except StopAsyncIteration as exc:
            raise self._error(LLMBadResponseError, "the response stream ended without a final message") from exc
        except TimeoutError as exc:
            raise self._error(LLMTimeoutError, f"no answer within {self.options.timeout:g}s") from exc
        except Exception as exc:
            translated = self._translate(exc) or translate_transport_error(exc, self.provider, self.model)
            if translated is None:
                raise
            raise translated from exc

    def _error(self, kind: type[LLMError], message: str) -> LLMError:
        return kind(message, provider=self.provider, model=self.model)

    def _finish(self, result: ProviderResult, request: ChatRequest, started: float) -> Completion:
        text, calls, finish = result.text, list(result.tool_calls), result.finish_reason
        if request.tools and not calls and text and request.tool_choice != "none":
            recovered = extract_tool_calls(text, {t.name for t in request.tools})
            if recovered is not None:
                calls, text = recovered
                finish = "tool_calls"
        return Completion(
            text=text,
            tool_calls=tuple(calls),
            finish_reason=finish,
            usage=result.usage,
            model=result.model or self.model,
            provider=self.provider,
            latency_ms=_elapsed_ms(started),
            raw_finish_reason=result.raw_finish_reason,
        )

    async def _record_success(
        self, completion: Completion, attempts: int, *, streamed: bool, metadata: Mapping[str, Any] | None
    ) -> None:
        await self._emit(
            CallRecord(
                provider=self.provider,
                model=self.model,
                latency_ms=completion.latency_ms,
                prompt_tokens=completion.usage.prompt_tokens,
                completion_tokens=completion.usage.completion_tokens,
                attempts=attempts,
                streamed=streamed,
                finish_reason=completion.finish_reason,
                metadata=dict(metadata or {}),
            )
        )

    async def _record_failure(
        self,
        exc: BaseException | None,
        started: float,
        attempts: int,
        *,
        streamed: bool,
        metadata: Mapping[str, Any] | None,
        message: str | None = None,
    ) -> None:
        await self._emit(
            CallRecord(
                provider=self.provider,
                model=self.model,
                latency_ms=_elapsed_ms(started),
                prompt_tokens=0,
                completion_tokens=0,
                error=message or str(exc) or type(exc).__name__,
                error_type=type(exc).__name__ if exc is not None else "Cancelled",
                attempts=attempts,
                streamed=streamed,
                metadata=dict(metadata or {}),
            )
        )

    async def _emit(self, record: CallRecord) -> None:
        recorder = self.options.recorder
        if recorder is None:
            return
        try:
            await recorder(record)
        except Exception:
            # Accounting must never turn a good answer into a failure.
            log.exception("LLM usage recorder failed")


def _elapsed_ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 3)


async def _aclose(events: AsyncIterator[Any]) -> None:
    close = getattr(events, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception:
            log.debug("closing a provider stream failed", exc_info=True)


@functools.cache
def _http_modules() -> tuple[ModuleType, ...]:
    # The SDKs use httpx or its fork httpx2; exceptions raised while reading a stream escape unwrapped.
    found = []
    for name in ("httpx", "httpx2"):
        try:
            found.append(importlib.import_module(name))
        except ImportError:
            continue
    return tuple(found)


def translate_transport_error(exc: BaseException, provider: str, model: str) -> LLMError | None:
    """Timeouts and connection failures from the HTTP layer, whichever httpx flavour raised them."""
    for module in _http_modules():
        if isinstance(exc, module.TimeoutException):
            return LLMTimeoutError(f"request timed out: {exc!r}", provider=provider, model=model)
        if isinstance(exc, module.UnsupportedProtocol):
            return LLMConfigurationError(f"invalid endpoint URL: {exc}", provider=provider, model=model)
        if isinstance(exc, module.TransportError):
            return LLMConnectionError(f"connection failed: {exc!r}", provider=provider, model=model)
    if isinstance(exc, ConnectionError):
        return LLMConnectionError(f"connection failed: {exc!r}", provider=provider, model=model)
    return None


def tool_calls_by_id(messages: Sequence[Message]) -> dict[str, ToolCall]:
    """Every tool call made in the conversation, by id (tool results need the call's name for Gemini)."""
    return {call.id: call for m in messages if isinstance(m, AssistantMessage) for call in m.tool_calls}


def joined_system(messages: Sequence[Message]) -> str:
    """All system messages as one prompt, for providers that take the system prompt separately."""
    return "\n\n".join(m.content for m in messages if m.role == "system" and m.content)  # type: ignore[union-attr]
