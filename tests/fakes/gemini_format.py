"""Google Gemini (Generative Language API, API-key mode) wire format.

Gemini streams whole parts rather than token deltas for function calls, so a streamed answer is
text pieces followed by one chunk with all ``functionCall`` parts, the last chunk carrying
``finishReason`` and ``usageMetadata``. SSE frames end in CRLF pairs as the real service sends.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tests.fakes.recorded import collect_text
from tests.fakes.replies import Reply, StatusFault
from tests.fakes.wire import ErrorResponse, RenderContext, default_message, retry_headers, text_pieces

_STATUS_NAMES: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def describe_chat(body: dict[str, Any]) -> tuple[str, tuple[str, ...], str]:
    """(system instruction, function names offered, all prompt text) of a generateContent request."""
    system_instruction = body.get("systemInstruction") or body.get("system_instruction")
    system = collect_text(system_instruction)
    names: list[str] = []
    for tool in body.get("tools") or []:
        declarations = tool.get("functionDeclarations") or tool.get("function_declarations") or []
        names.extend(d["name"] for d in declarations if isinstance(d, dict) and "name" in d)
    return system, tuple(names), collect_text([system_instruction, body.get("contents") or []])


def embedding_inputs(body: dict[str, Any]) -> list[str]:
    """Texts of an ``embedContent`` (one ``content``) or ``batchEmbedContents`` (``requests``) body."""
    if "requests" in body:
        return [collect_text(r.get("content")) for r in body["requests"]]
    return [collect_text(body.get("content"))]


def embedding_dimension(body: dict[str, Any]) -> int | None:
    first = body["requests"][0] if body.get("requests") else body
    value = first.get("outputDimensionality") or first.get("output_dimensionality")
    return int(value) if value else None


class GeminiFormat:
    response_id_prefix = "fake-response-"
    call_id_prefix = "fake-call-"

    def render(self, reply: Reply, ctx: RenderContext) -> dict[str, Any]:
        parts: list[dict[str, Any]] = [{"text": reply.content}] if reply.content else []
        parts.extend(self._function_parts(reply))
        return self._response(ctx, self._candidate(reply, parts, final=True), final=True)

    def render_stream(self, reply: Reply, ctx: RenderContext) -> Iterator[str]:
        pieces = text_pieces(reply.content)
        function_parts = self._function_parts(reply)
        chunks: list[list[dict[str, Any]]] = [[{"text": p}] for p in pieces]
        if function_parts:
            chunks.append(function_parts)
        if _malformed(reply) or not chunks:
            chunks.append([])
        for number, parts in enumerate(chunks):
            final = number == len(chunks) - 1
            yield _sse(self._response(ctx, self._candidate(reply, parts, final=final), final=final))

    def render_error(self, fault: StatusFault) -> ErrorResponse:
        status = _STATUS_NAMES.get(fault.status, "INTERNAL" if fault.status >= 500 else "FAILED_PRECONDITION")
        body = {"error": {"code": fault.status, "message": default_message(fault), "status": status}}
        return ErrorResponse(fault.status, body, retry_headers(fault))

    @staticmethod
    def render_embeddings(vectors: list[list[float]], *, batch: bool) -> dict[str, Any]:
        if batch:
            return {"embeddings": [{"values": v} for v in vectors]}
        return {"embedding": {"values": vectors[0]}}

    @staticmethod
    def _function_parts(reply: Reply) -> list[dict[str, Any]]:
        if _malformed(reply):
            return []
        parts = []
        for call in reply.calls:
            function_call: dict[str, Any] = {"name": call.name, "args": dict(call.arguments)}
            if call.id is not None:
                function_call["id"] = call.id
            parts.append({"functionCall": function_call})
        return parts

    @staticmethod
    def _candidate(reply: Reply, parts: list[dict[str, Any]], *, final: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"index": 0}
        if _malformed(reply):
            if final:
                raw = next(c.arguments_json() for c in reply.calls if c.malformed)
                candidate["finishMessage"] = f"Malformed function call: {raw}"
        elif parts or not final:
            candidate["content"] = {"role": "model", "parts": parts}
        if final:
            candidate["finishReason"] = _finish_reason(reply)
        return candidate

    @staticmethod
    def _response(ctx: RenderContext, candidate: dict[str, Any], *, final: bool) -> dict[str, Any]:
        usage = {"promptTokenCount": ctx.prompt_tokens, "totalTokenCount": ctx.prompt_tokens}
        if final:
            usage = {
                "promptTokenCount": ctx.prompt_tokens,
                "candidatesTokenCount": ctx.completion_tokens,
                "totalTokenCount": ctx.total_tokens,
            }
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": ctx.model,
            "responseId": ctx.response_id,
        }


def _malformed(reply: Reply) -> bool:
    return any(c.malformed for c in reply.calls)


def _finish_reason(reply: Reply) -> str:
    if _malformed(reply):
        return "MALFORMED_FUNCTION_CALL"
    return "MAX_TOKENS" if reply.truncated else "STOP"


def _sse(payload: dict[str, Any]) -> str:
    return "data: " + json.dumps(payload, separators=(",", ":")) + "\r\n\r\n"
