"""Anthropic Messages wire format.

The stream follows the documented event sequence: ``message_start``, then per content block
``content_block_start`` / ``content_block_delta`` (``text_delta`` or ``input_json_delta``) /
``content_block_stop``, then ``message_delta`` carrying ``stop_reason`` and output usage, then
``message_stop``; the SDK's ``messages.stream()`` accumulator depends on that order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tests.fakes.recorded import collect_text
from tests.fakes.replies import Reply, StatusFault, ToolCall
from tests.fakes.wire import (
    ErrorResponse,
    RenderContext,
    default_message,
    json_fragments,
    retry_headers,
    sse,
    text_pieces,
)

_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def describe_chat(body: dict[str, Any]) -> tuple[str, tuple[str, ...], str]:
    """(system prompt, tool names offered, all prompt text) of a Messages request."""
    system = collect_text(body.get("system"))
    tools = tuple(t["name"] for t in body.get("tools") or [] if isinstance(t, dict) and "name" in t)
    return system, tools, collect_text([body.get("system"), body.get("messages") or []])


class AnthropicFormat:
    response_id_prefix = "msg_fake"
    call_id_prefix = "toolu_fake"

    def render(self, reply: Reply, ctx: RenderContext) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if reply.content:
            content.append({"type": "text", "text": reply.content})
        # Non-streamed malformed input cannot be an object, so it goes out as the raw string.
        content.extend(
            self._tool_use(call, ctx, call.raw_arguments if call.malformed else dict(call.arguments))
            for call in reply.calls
        )
        return {
            **self._message(ctx, content, output_tokens=ctx.completion_tokens),
            "stop_reason": _stop_reason(reply),
        }

    def render_stream(self, reply: Reply, ctx: RenderContext) -> Iterator[str]:
        yield sse({"type": "message_start", "message": self._message(ctx, [], output_tokens=1)}, "message_start")
        yield sse({"type": "ping"}, "ping")
        index = 0
        if reply.content:
            yield self._block_start(index, {"type": "text", "text": ""})
            for piece in text_pieces(reply.content):
                yield self._block_delta(index, {"type": "text_delta", "text": piece})
            yield sse({"type": "content_block_stop", "index": index}, "content_block_stop")
            index += 1
        for call in reply.calls:
            yield self._block_start(index, self._tool_use(call, ctx, {}))
            for fragment in json_fragments(call.arguments_json()):
                yield self._block_delta(index, {"type": "input_json_delta", "partial_json": fragment})
            yield sse({"type": "content_block_stop", "index": index}, "content_block_stop")
            index += 1
        delta = {"stop_reason": _stop_reason(reply), "stop_sequence": None}
        usage = {"input_tokens": ctx.prompt_tokens, "output_tokens": ctx.completion_tokens}
        yield sse({"type": "message_delta", "delta": delta, "usage": usage}, "message_delta")
        yield sse({"type": "message_stop"}, "message_stop")

    def render_error(self, fault: StatusFault) -> ErrorResponse:
        kind = _ERROR_TYPES.get(fault.status, "api_error")
        body = {"type": "error", "error": {"type": kind, "message": default_message(fault)}}
        return ErrorResponse(fault.status, body, {"request-id": "req_fake", **retry_headers(fault)})

    @staticmethod
    def _tool_use(call: ToolCall, ctx: RenderContext, input_value: Any) -> dict[str, Any]:
        return {"type": "tool_use", "id": ctx.call_id(call), "name": call.name, "input": input_value}

    @staticmethod
    def _message(ctx: RenderContext, content: list[dict[str, Any]], *, output_tokens: int) -> dict[str, Any]:
        return {
            "id": ctx.response_id,
            "type": "message",
            "role": "assistant",
            "model": ctx.model,
            "content": content,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": ctx.prompt_tokens,
                "output_tokens": output_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }

    @staticmethod
    def _block_start(index: int, block: dict[str, Any]) -> str:
        return sse({"type": "content_block_start", "index": index, "content_block": block}, "content_block_start")

    @staticmethod
    def _block_delta(index: int, delta: dict[str, Any]) -> str:
        return sse({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta")


def _stop_reason(reply: Reply) -> str:
    if reply.truncated:
        return "max_tokens"
    return "tool_use" if reply.calls else "end_turn"
