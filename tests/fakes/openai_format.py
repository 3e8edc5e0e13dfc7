"""OpenAI Chat Completions and Embeddings wire format (also served to Azure OpenAI).

Shapes follow the public API reference closely enough for the official ``openai`` SDK to parse
them, streaming included: role chunk, content pieces, tool-call deltas (id and name first, then
argument fragments), a finish chunk, an optional usage chunk, then ``[DONE]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tests.fakes.embedder import to_base64
from tests.fakes.recorded import collect_text
from tests.fakes.replies import Reply, StatusFault
from tests.fakes.wire import (
    ErrorResponse,
    RenderContext,
    default_message,
    json_fragments,
    retry_headers,
    sse,
    text_pieces,
)

_ERROR_TYPES: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


def describe_chat(body: dict[str, Any]) -> tuple[str, tuple[str, ...], str]:
    """(system prompt, tool names offered, all prompt text) of a chat request."""
    messages = body.get("messages") or []
    system = "\n".join(
        collect_text(m.get("content"))
        for m in messages
        if isinstance(m, dict) and m.get("role") in ("system", "developer")
    )
    tools = tuple(
        t["function"]["name"] for t in body.get("tools") or [] if isinstance(t, dict) and "function" in t
    ) + tuple(f["name"] for f in body.get("functions") or [] if isinstance(f, dict))
    return system, tools, collect_text(messages)


def embedding_inputs(body: dict[str, Any]) -> list[str]:
    """``input`` may be a string, a list of strings, or token ids; token ids are embedded as text."""
    raw = body.get("input", "")
    if isinstance(raw, str):
        return [raw]
    if raw and all(isinstance(x, int) for x in raw):
        return [" ".join(map(str, raw))]
    return [item if isinstance(item, str) else " ".join(map(str, item)) for item in raw]


class OpenAIFormat:
    response_id_prefix = "chatcmpl-fake"
    call_id_prefix = "call_fake"

    def render(self, reply: Reply, ctx: RenderContext) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.content or None, "refusal": None}
        if reply.calls:
            message["tool_calls"] = [
                {
                    "id": ctx.call_id(c),
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments_json()},
                }
                for c in reply.calls
            ]
        return {
            "id": ctx.response_id,
            "object": "chat.completion",
            "created": ctx.created,
            "model": ctx.model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": _finish_reason(reply)}],
            "usage": self._usage(ctx),
            "system_fingerprint": "fp_fake",
        }

    def render_stream(self, reply: Reply, ctx: RenderContext) -> Iterator[str]:
        yield self._chunk(ctx, {"role": "assistant", "content": "", "refusal": None})
        for piece in text_pieces(reply.content):
            yield self._chunk(ctx, {"content": piece})
        for index, call in enumerate(reply.calls):
            head = {"index": index, "id": ctx.call_id(call), "type": "function"}
            yield self._chunk(ctx, {"tool_calls": [{**head, "function": {"name": call.name, "arguments": ""}}]})
            for fragment in json_fragments(call.arguments_json()):
                yield self._chunk(ctx, {"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
        yield self._chunk(ctx, {}, finish_reason=_finish_reason(reply))
        if ctx.include_usage:
            yield sse({**self._envelope(ctx), "choices": [], "usage": self._usage(ctx)})
        yield sse("[DONE]")

    def render_error(self, fault: StatusFault) -> ErrorResponse:
        kind, code = _ERROR_TYPES.get(
            fault.status, ("server_error" if fault.status >= 500 else "invalid_request_error", None)
        )
        body = {"error": {"message": default_message(fault), "type": kind, "param": None, "code": code}}
        return ErrorResponse(fault.status, body, {"x-request-id": "req_fake", **retry_headers(fault)})

    @staticmethod
    def render_embeddings(
        vectors: list[list[float]], model: str, prompt_tokens: int, encoding_format: str | None
    ) -> dict[str, Any]:
        as_base64 = encoding_format == "base64"
        return {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": to_base64(v) if as_base64 else v}
                for i, v in enumerate(vectors)
            ],
            "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }

    @staticmethod
    def _envelope(ctx: RenderContext) -> dict[str, Any]:
        return {
            "id": ctx.response_id,
            "object": "chat.completion.chunk",
            "created": ctx.created,
            "model": ctx.model,
            "system_fingerprint": "fp_fake",
        }

    def _chunk(self, ctx: RenderContext, delta: dict[str, Any], finish_reason: str | None = None) -> str:
        chunk = {
            **self._envelope(ctx),
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if ctx.include_usage:
            # The real API sends an explicit null on every chunk but the last when usage is requested.
            chunk["usage"] = None
        return sse(chunk)

    @staticmethod
    def _usage(ctx: RenderContext) -> dict[str, int]:
        return {
            "prompt_tokens": ctx.prompt_tokens,
            "completion_tokens": ctx.completion_tokens,
            "total_tokens": ctx.total_tokens,
        }


def _finish_reason(reply: Reply) -> str:
    if reply.truncated:
        return "length"
    return "tool_calls" if reply.calls else "stop"
