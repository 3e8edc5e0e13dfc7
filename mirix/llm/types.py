"""Provider-neutral chat types: messages in, completions and stream events out.

Adapters translate these to and from each provider's wire format, so agent code never sees an SDK type.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeAlias

_DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[^,;]*)*?);base64,(?P<data>.*)$", re.S)


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image given by URL: ``data:<type>;base64,...`` (sent inline) or ``http(s)://`` (fetched by the provider)."""

    url: str
    detail: Literal["auto", "low", "high"] | None = None

    @classmethod
    def from_bytes(
        cls, data: bytes, media_type: str, detail: Literal["auto", "low", "high"] | None = None
    ) -> ImagePart:
        return cls(f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}", detail)

    @property
    def is_inline(self) -> bool:
        return self.url.startswith("data:")

    def inline_data(self) -> tuple[str, str]:
        """(media type, base64 payload) of a data URL; ValueError for anything else."""
        match = _DATA_URL.match(self.url)
        if match is None:
            raise ValueError("image is not a base64 data URL")
        payload = re.sub(r"\s+", "", match["data"])
        try:
            base64.b64decode(payload, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"image data URL is not valid base64: {exc}") from exc
        return (match["type"] or "image/png"), payload


Part: TypeAlias = TextPart | ImagePart


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call the model made.

    ``arguments`` is None when they could not be parsed even after repair; ``error`` then says why,
    and the agent loop reports it back to the model instead of running the tool. ``provider_data``
    carries opaque per-provider values that must be echoed back (Gemini's thought signatures).
    """

    id: str
    name: str
    arguments: dict[str, Any] | None
    raw_arguments: str = ""
    error: str | None = None
    repaired: bool = False
    provider_data: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None and self.arguments is not None


@dataclass(frozen=True, slots=True)
class SystemMessage:
    content: str
    role: ClassVar[str] = "system"


@dataclass(frozen=True, slots=True)
class UserMessage:
    """Plain text, or a sequence of text and image parts."""

    content: str | Sequence[Part]
    role: ClassVar[str] = "user"

    def __post_init__(self) -> None:
        if not isinstance(self.content, str):
            object.__setattr__(self, "content", tuple(self.content))

    @property
    def parts(self) -> tuple[Part, ...]:
        if isinstance(self.content, str):
            return (TextPart(self.content),) if self.content else ()
        return tuple(self.content)


@dataclass(frozen=True, slots=True)
class AssistantMessage:
    content: str | None = None
    tool_calls: Sequence[ToolCall] = ()
    role: ClassVar[str] = "assistant"

    def __post_init__(self) -> None:
        object.__setattr__(self, "tool_calls", tuple(self.tool_calls))


@dataclass(frozen=True, slots=True)
class ToolResultMessage:
    """The result of running one tool call. ``name`` is looked up from the call when omitted (Gemini needs it)."""

    tool_call_id: str
    content: str
    name: str | None = None
    is_error: bool = False
    role: ClassVar[str] = "tool"


Message: TypeAlias = SystemMessage | UserMessage | AssistantMessage | ToolResultMessage


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


ToolChoice: TypeAlias = Literal["auto", "required", "none"] | Mapping[str, str] | None
"""None: the provider's default; "required": some tool must be called; {"name": n}: exactly that tool."""


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


FinishReason: TypeAlias = Literal["stop", "tool_calls", "length", "content_filter", "other"]


@dataclass(frozen=True, slots=True)
class Completion:
    """One model turn. ``finish_reason`` is normalised; ``raw_finish_reason`` is the provider's own value."""

    text: str
    tool_calls: tuple[ToolCall, ...]
    finish_reason: FinishReason
    usage: Usage
    model: str
    provider: str
    latency_ms: float
    raw_finish_reason: str | None = None

    def as_message(self) -> AssistantMessage:
        """The assistant message to append to the conversation before sending tool results."""
        return AssistantMessage(self.text or None, self.tool_calls)


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of tool call ``index``: id and name arrive first, then argument fragments (Gemini: all at once)."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments_delta: str = ""


StreamEvent: TypeAlias = TextDelta | ToolCallDelta | Completion
"""A stream yields deltas and always ends with exactly one Completion (the whole turn, with usage)."""
