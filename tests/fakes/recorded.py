"""What the fake saw: one record per request, in arrival order.

Records are provider-neutral summaries (system prompt, tools offered, prompt text, embedding
inputs) next to the raw parsed body, so assertions and responders need not know each wire format.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Provider = Literal["openai", "azure", "anthropic", "gemini", "ollama"]
Operation = Literal["chat", "embeddings"]

# Keys whose string values are protocol bookkeeping, not text the model reads.
_NON_TEXT_KEYS = frozenset(
    {"role", "type", "id", "tool_call_id", "tool_use_id", "cache_control", "mime_type", "mimeType", "signature"}
)


def collect_text(value: Any) -> str:
    """All human-readable strings in a nested message structure, joined by newlines.

    Used for token estimates and for ``prompt_text``; being schema-agnostic keeps it valid for
    every provider's message shape (and for tool arguments and results nested inside them).
    """
    return "\n".join(_strings(value))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if value:
            yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if key not in _NON_TEXT_KEYS:
                yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it.

    ``received_at`` is ``time.monotonic()``, so the spacing of retries can be asserted.
    ``system``, ``tools`` and ``prompt_text`` are empty for embedding requests; ``inputs`` holds
    the texts to embed and is empty for chat requests.
    """

    provider: Provider
    operation: Operation
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: Any
    model: str
    stream: bool
    received_at: float
    system: str = ""
    tools: tuple[str, ...] = ()
    prompt_text: str = ""
    inputs: tuple[str, ...] = field(default=())
