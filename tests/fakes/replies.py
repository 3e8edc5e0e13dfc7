"""What the fake provider answers: scripted replies and faults.

A test describes the model's *behaviour* once (say a tool call with these arguments) and the fake
renders it in whichever wire format the request arrived in, so the same script exercises the
OpenAI, Azure, Anthropic and Gemini code paths of the server alike.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakes.recorded import RecordedRequest


def estimate_tokens(text: str) -> int:
    """Rough, deterministic token count (~4 characters a token, at least 1).

    Real tokenizers are not needed: tests only have to see plausible, stable, non-zero counts.
    """
    return max(1, len(text) // 4)


@dataclass(frozen=True)
class ToolCall:
    """One function/tool call made by the model.

    ``raw_arguments`` replaces the JSON encoding of ``arguments`` verbatim; it exists to send
    arguments that are *not* valid JSON, the way real models occasionally do.
    """

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None
    raw_arguments: str | None = None

    @property
    def malformed(self) -> bool:
        return self.raw_arguments is not None

    def arguments_json(self) -> str:
        """The arguments exactly as they go on the wire (OpenAI's string form)."""
        if self.raw_arguments is not None:
            return self.raw_arguments
        return json.dumps(dict(self.arguments), separators=(",", ":"))


@dataclass(frozen=True)
class Reply:
    """A successful model turn: optional text, then zero or more tool calls (``calls``).

    ``prompt_tokens``/``completion_tokens`` override the estimated usage when a test asserts on
    exact accounting; ``truncated`` reports the turn as cut off by the output-token limit.
    """

    content: str = ""
    calls: tuple[ToolCall, ...] = ()
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    truncated: bool = False

    @classmethod
    def text(cls, content: str, **usage: int) -> Reply:
        return cls(content=content, **usage)

    @classmethod
    def tool_call(
        cls, name: str, arguments: Mapping[str, Any] | None = None, *, id: str | None = None, content: str = ""
    ) -> Reply:
        return cls(content=content, calls=(ToolCall(name, dict(arguments or {}), id=id),))

    @classmethod
    def tool_calls(cls, calls: Iterable[ToolCall | tuple[str, Mapping[str, Any]]], *, content: str = "") -> Reply:
        """Several calls in one turn (parallel tool calls); items are ToolCall or (name, arguments)."""
        built = tuple(c if isinstance(c, ToolCall) else ToolCall(c[0], dict(c[1])) for c in calls)
        return cls(content=content, calls=built)

    def output_text(self) -> str:
        """Everything the model 'wrote', used to estimate completion tokens."""
        return self.content + "".join(c.name + c.arguments_json() for c in self.calls)

    def usage(self, prompt_text: str) -> tuple[int, int]:
        """(prompt_tokens, completion_tokens), estimated unless the reply pins them."""
        prompt = self.prompt_tokens if self.prompt_tokens is not None else estimate_tokens(prompt_text)
        completion = (
            self.completion_tokens if self.completion_tokens is not None else estimate_tokens(self.output_text())
        )
        return prompt, completion


@dataclass(frozen=True)
class StatusFault:
    """Answer with an HTTP error in the provider's error format.

    ``retry_after`` (seconds) is sent as ``retry-after`` and ``retry-after-ms`` so the SDKs'
    own retry loops can be driven quickly: OpenAI's and Anthropic's clients honour the
    millisecond header, so ``retry_after=0.01`` retries after 10 ms instead of their ~0.5 s
    back-off (they ignore a value of 0 and fall back to that back-off).
    """

    status: int
    message: str = ""
    retry_after: float | None = None


@dataclass(frozen=True)
class TimeoutFault:
    """Hold the request for ``seconds`` before answering, to trip the client's timeout.

    If the client is still waiting afterwards it gets the next scripted answer (queue, then
    responder, then "ok"); if it gave up, the wait ends as soon as the connection closes, so a
    long value costs nothing.
    """

    seconds: float = 5.0


@dataclass(frozen=True)
class RawBody:
    """Answer with exactly this JSON body (a response the provider format would not produce)."""

    body: Any
    status: int = 200


class Fault:
    """Factories for failure modes; the instances are plain data (StatusFault, TimeoutFault, RawBody, Reply)."""

    @staticmethod
    def status(status: int, message: str = "", *, retry_after: float | None = None) -> StatusFault:
        return StatusFault(status, message, retry_after)

    @staticmethod
    def timeout(seconds: float = 5.0) -> TimeoutFault:
        return TimeoutFault(seconds)

    @staticmethod
    def body(body: Any, status: int = 200) -> RawBody:
        return RawBody(body, status)

    @staticmethod
    def malformed_tool_call(
        name: str = "trigger_memory_update", raw_arguments: str = '{"memory_types": ["episodic"'
    ) -> Reply:
        """A 200 response whose tool call carries arguments that are not valid JSON.

        It is a Reply because the HTTP exchange succeeds; the damage is in the payload. OpenAI gets
        the raw string as ``arguments``; Anthropic gets it as a non-object ``input`` (streamed: as
        ``input_json_delta`` fragments, which the SDK fails to parse); Gemini, whose wire format
        cannot carry unparseable arguments, answers the way the real API does: no content and
        ``finishReason: MALFORMED_FUNCTION_CALL``.
        """
        return Reply(calls=(ToolCall(name, raw_arguments=raw_arguments),))


Scripted = Reply | StatusFault | TimeoutFault | RawBody
"""Anything the fake can be told to answer a chat request with."""

EmbeddingFault = StatusFault | TimeoutFault

Responder = Callable[["RecordedRequest"], Scripted | Awaitable[Scripted]]
"""Computes the answer from the request when the queue is empty (may be sync or async)."""
