"""Pieces shared by the per-provider wire formats.

Each provider module (``openai_format``, ``anthropic_format``, ``gemini_format``,
``ollama_format``) turns a ``Reply`` or ``StatusFault`` into that provider's JSON or SSE; the
server core only sees the ``ChatFormat`` protocol below.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from tests.fakes.replies import Reply, StatusFault, ToolCall


@dataclass(frozen=True)
class RenderContext:
    """Per-response values that must be consistent across all chunks of one answer."""

    model: str
    response_id: str
    created: int
    prompt_tokens: int
    completion_tokens: int
    new_call_id: Callable[[], str]
    include_usage: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def call_id(self, call: ToolCall) -> str:
        return call.id if call.id is not None else self.new_call_id()


@dataclass(frozen=True)
class ErrorResponse:
    status: int
    body: Any
    headers: dict[str, str]


class ChatFormat(Protocol):
    """How one provider renders chat answers."""

    response_id_prefix: str
    call_id_prefix: str

    def render(self, reply: Reply, ctx: RenderContext) -> dict[str, Any]: ...

    def render_stream(self, reply: Reply, ctx: RenderContext) -> Iterator[str]: ...

    def render_error(self, fault: StatusFault) -> ErrorResponse: ...


def sse(data: Any, event: str | None = None) -> str:
    """One server-sent event; ``data`` is JSON-encoded unless already a string."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n"


_WORD = re.compile(r"\s*\S+")


def text_pieces(text: str, words_per_piece: int = 2) -> list[str]:
    """Split text into word groups for streaming; joining them gives back ``text`` exactly.

    Streaming in several pieces (never one) is what makes reassembly in client code testable.
    """
    words = _WORD.findall(text)
    trailing = text[len("".join(words)) :]
    pieces = ["".join(words[i : i + words_per_piece]) for i in range(0, len(words), words_per_piece)]
    if trailing:
        pieces.append(trailing)
    return pieces or ([text] if text else [])


def json_fragments(raw: str, size: int = 12) -> list[str]:
    """Split a JSON string into fixed-size fragments, as providers stream tool arguments."""
    return [raw[i : i + size] for i in range(0, len(raw), size)] or [""]


def retry_headers(fault: StatusFault) -> dict[str, str]:
    if fault.retry_after is None:
        return {}
    seconds = max(0.0, fault.retry_after)
    return {"retry-after": str(int(-(-seconds // 1))), "retry-after-ms": str(int(round(seconds * 1000)))}


HTTP_REASONS: dict[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    529: "Overloaded",
}


def default_message(fault: StatusFault) -> str:
    return fault.message or f"fake provider: {HTTP_REASONS.get(fault.status, 'error')} ({fault.status})"
