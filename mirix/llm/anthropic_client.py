"""Anthropic Messages API: system prompt apart, tool_use/tool_result blocks, alternating roles."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import anthropic

from mirix.llm.client import BaseChatClient, ChatRequest, ClientOptions, ProviderResult, joined_system
from mirix.llm.endpoints import Endpoint
from mirix.llm.errors import (
    LLMBadResponseError,
    LLMConnectionError,
    LLMError,
    LLMProviderError,
    LLMTimeoutError,
    error_for_status,
)
from mirix.llm.toolparse import make_tool_call
from mirix.llm.types import FinishReason, ImagePart, Message, TextDelta, ToolCall, ToolCallDelta, Usage

DEFAULT_MAX_TOKENS = 4096  # the API requires max_tokens on every request
_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
}


def create_sdk_client(endpoint: Endpoint, timeout: float) -> anthropic.AsyncAnthropic:
    # max_retries=0: retry.py is the only retry policy.
    return anthropic.AsyncAnthropic(
        api_key=endpoint.api_key, base_url=endpoint.base_url, max_retries=0, timeout=timeout
    )


class AnthropicChatClient(BaseChatClient):
    def __init__(
        self,
        sdk: anthropic.AsyncAnthropic,
        *,
        model: str,
        provider: str = "anthropic",
        options: ClientOptions | None = None,
        owns_sdk: bool = False,
    ) -> None:
        super().__init__(sdk, model=model, provider=provider, options=options or ClientOptions(), owns_sdk=owns_sdk)

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            "messages": to_anthropic_messages(request.messages),
        }
        system = joined_system(request.messages)
        if system:
            body["system"] = system
        if request.tools:
            body["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": dict(t.parameters)}
                for t in request.tools
            ]
            if request.tool_choice is not None:
                body["tool_choice"] = anthropic_tool_choice(request.tool_choice)
        # No temperature: the Messages API of this SDK generation (anthropic>=2) has no sampling
        # parameters, and sending one through extra_body would be refused by current models.
        return body

    async def _complete_once(self, request: ChatRequest) -> ProviderResult:
        message = await self.sdk.messages.create(**self._body(request))
        text: list[str] = []
        calls: list[ToolCall] = []
        for block in message.content:
            if block.type == "text":
                text.append(block.text)
            elif block.type == "tool_use":
                # A malformed call arrives with a non-object input; toolparse repairs or reports it.
                calls.append(make_tool_call(block.id, block.name, _raw_input(block.input)))
        return ProviderResult(
            text="".join(text),
            tool_calls=calls,
            finish_reason=_finish(message.stop_reason, calls),
            raw_finish_reason=message.stop_reason,
            usage=_usage(message.usage),
            model=message.model,
        )

    async def _stream_once(self, request: ChatRequest) -> AsyncIterator[TextDelta | ToolCallDelta | ProviderResult]:
        # Raw events rather than messages.stream(): its accumulator raises on malformed tool JSON,
        # which toolparse is there to repair or report.
        stream = await self.sdk.messages.create(**self._body(request), stream=True)
        text: list[str] = []
        blocks: dict[int, dict[str, Any]] = {}
        prompt_tokens = completion_tokens = 0
        stop_reason: str | None = None
        model: str | None = None
        try:
            async for event in stream:
                if event.type == "message_start":
                    model = event.message.model
                    prompt_tokens = _prompt_tokens(event.message.usage)
                    completion_tokens = event.message.usage.output_tokens or 0
                elif event.type == "content_block_start":
                    block = event.content_block
                    if block.type == "tool_use":
                        index = len(blocks)
                        blocks[event.index] = {"index": index, "id": block.id, "name": block.name, "json": []}
                        yield ToolCallDelta(index=index, id=block.id, name=block.name)
                    elif block.type == "text" and block.text:
                        text.append(block.text)
                        yield TextDelta(block.text)
                elif event.type == "content_block_delta":
                    delta = event.delta
                    if delta.type == "text_delta" and delta.text:
                        text.append(delta.text)
                        yield TextDelta(delta.text)
                    elif delta.type == "input_json_delta" and event.index in blocks:
                        slot = blocks[event.index]
                        slot["json"].append(delta.partial_json)
                        yield ToolCallDelta(index=slot["index"], arguments_delta=delta.partial_json)
                elif event.type == "message_delta":
                    stop_reason = event.delta.stop_reason or stop_reason
                    if event.usage is not None:
                        completion_tokens = event.usage.output_tokens or completion_tokens
                        if getattr(event.usage, "input_tokens", None):
                            prompt_tokens = _prompt_tokens(event.usage)
        finally:
            await stream.close()
        calls = [make_tool_call(b["id"], b["name"], "".join(b["json"])) for _, b in sorted(blocks.items())]
        yield ProviderResult(
            text="".join(text),
            tool_calls=calls,
            finish_reason=_finish(stop_reason, calls),
            raw_finish_reason=stop_reason,
            usage=Usage(prompt_tokens, completion_tokens),
            model=model,
        )

    def _translate(self, exc: Exception) -> LLMError | None:
        if isinstance(exc, anthropic.APIStatusError):
            return error_for_status(
                exc.status_code, _message(exc), provider=self.provider, model=self.model, headers=exc.response.headers
            )
        if isinstance(exc, anthropic.APITimeoutError):
            return self._error(LLMTimeoutError, f"request timed out: {exc}")
        if isinstance(exc, anthropic.APIConnectionError):
            return self._error(LLMConnectionError, f"connection failed: {exc}")
        if isinstance(exc, anthropic.APIResponseValidationError):
            return self._error(LLMBadResponseError, f"unexpected response shape: {exc}")
        if isinstance(exc, anthropic.APIError):
            return LLMProviderError(_message(exc), status=None, provider=self.provider, model=self.model)
        return None

    @staticmethod
    async def close_sdk(sdk: Any) -> None:
        await sdk.close()


def to_anthropic_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """User/assistant turns of content blocks; tool results ride in user turns; same-role turns merged."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        if m.role == "user":
            role, blocks = "user", [_part(p) for p in m.parts if isinstance(p, ImagePart) or p.text]
        elif m.role == "assistant":
            role, blocks = "assistant", []
            if m.content:
                blocks.append({"type": "text", "text": m.content})
            blocks.extend(
                {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments or {}} for c in m.tool_calls
            )
        else:
            role = "user"
            result: dict[str, Any] = {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content}
            if m.is_error:
                result["is_error"] = True
            blocks = [result]
        if not blocks:
            continue  # the API rejects empty turns and empty text blocks
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return out


def anthropic_tool_choice(choice: Any) -> dict[str, str]:
    if isinstance(choice, Mapping):
        return {"type": "tool", "name": choice["name"]}
    return {"type": {"auto": "auto", "required": "any", "none": "none"}[choice]}


def _part(part: Any) -> dict[str, Any]:
    if isinstance(part, ImagePart):
        if part.is_inline:
            media_type, data = part.inline_data()
            return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
        return {"type": "image", "source": {"type": "url", "url": part.url}}
    return {"type": "text", "text": part.text}


def _raw_input(value: Any) -> Any:
    if isinstance(value, Mapping | str) or value is None:
        return value
    return json.dumps(value)


def _finish(reason: str | None, calls: list[ToolCall]) -> FinishReason:
    if calls and reason in (None, "tool_use", "end_turn"):
        return "tool_calls"
    return _FINISH.get(reason or "end_turn", "other")


def _prompt_tokens(usage: Any) -> int:
    # Cached prompt tokens are reported apart from input_tokens; all of them were processed.
    return (
        (usage.input_tokens or 0)
        + (getattr(usage, "cache_creation_input_tokens", 0) or 0)
        + (getattr(usage, "cache_read_input_tokens", 0) or 0)
    )


def _usage(usage: Any) -> Usage:
    return Usage(prompt_tokens=_prompt_tokens(usage), completion_tokens=usage.output_tokens or 0)


def _message(exc: anthropic.APIError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return exc.message
