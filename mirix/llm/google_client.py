"""Google Gemini through google-genai's async client: system_instruction apart, roles user/model,
function_call/function_response parts, thought signatures echoed back."""

from __future__ import annotations

import base64
import mimetypes
import re
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from typing import Any

from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from mirix.llm.client import (
    BaseChatClient,
    ChatRequest,
    ClientOptions,
    ProviderResult,
    joined_system,
    tool_calls_by_id,
)
from mirix.llm.endpoints import Endpoint
from mirix.llm.errors import LLMBadResponseError, LLMError, error_for_status
from mirix.llm.toolparse import make_tool_call, new_call_id
from mirix.llm.types import FinishReason, ImagePart, Message, TextDelta, ToolCall, ToolCallDelta, Usage

_FINISH: dict[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "MALFORMED_FUNCTION_CALL": "tool_calls",
    "UNEXPECTED_TOOL_CALL": "tool_calls",
}
_BAD_CALL_REASONS = frozenset({"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL"})
_CALLED_NAME = re.compile(r"([A-Za-z_][\w.-]*)\s*\(")
_RETRY_DELAY = re.compile(r"^(\d+(?:\.\d+)?)s$")


def create_sdk_client(endpoint: Endpoint, timeout: float) -> genai.Client:
    # No retry_options: the SDK then tries once, leaving retries to retry.py.
    options = types.HttpOptions(base_url=endpoint.base_url, timeout=int(timeout * 1000))
    return genai.Client(api_key=endpoint.api_key, vertexai=False, http_options=options)


class GoogleChatClient(BaseChatClient):
    def __init__(
        self,
        sdk: genai.Client,
        *,
        model: str,
        provider: str = "google_ai",
        options: ClientOptions | None = None,
        owns_sdk: bool = False,
    ) -> None:
        super().__init__(sdk, model=model, provider=provider, options=options or ClientOptions(), owns_sdk=owns_sdk)

    def _config(self, request: ChatRequest) -> types.GenerateContentConfig:
        config = types.GenerateContentConfig(
            temperature=request.temperature,
            max_output_tokens=request.max_tokens,
            # Declarations only, never Python callables: nothing for the SDK to run by itself.
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        system = joined_system(request.messages)
        if system:
            config.system_instruction = system
        if request.tools:
            config.tools = [
                types.Tool(
                    function_declarations=[
                        types.FunctionDeclaration(
                            name=t.name, description=t.description, parameters_json_schema=dict(t.parameters)
                        )
                        for t in request.tools
                    ]
                )
            ]
            if request.tool_choice is not None:
                config.tool_config = gemini_tool_config(request.tool_choice)
        return config

    async def _complete_once(self, request: ChatRequest) -> ProviderResult:
        response = await self.sdk.aio.models.generate_content(
            model=self.model, contents=to_gemini_contents(request.messages), config=self._config(request)
        )
        candidate = _candidate(response)
        text, calls = _read_parts(candidate)
        raw_finish = _finish_name(candidate)
        if raw_finish in _BAD_CALL_REASONS and not calls:
            calls.append(_malformed_call(candidate, request))
        return ProviderResult(
            text=text,
            tool_calls=calls,
            finish_reason=_finish(raw_finish, calls, response),
            raw_finish_reason=raw_finish,
            usage=_usage(response.usage_metadata),
            model=response.model_version,
        )

    async def _stream_once(self, request: ChatRequest) -> AsyncIterator[TextDelta | ToolCallDelta | ProviderResult]:
        stream = await self.sdk.aio.models.generate_content_stream(
            model=self.model, contents=to_gemini_contents(request.messages), config=self._config(request)
        )
        text: list[str] = []
        calls: list[ToolCall] = []
        raw_finish: str | None = None
        usage = Usage()
        model: str | None = None
        last: Any = None
        last_response: Any = None
        try:
            async for chunk in stream:
                last_response = chunk
                model = chunk.model_version or model
                if chunk.usage_metadata is not None:
                    usage = _usage(chunk.usage_metadata)
                candidate = chunk.candidates[0] if chunk.candidates else None
                if candidate is None:
                    continue
                last = candidate
                raw_finish = _finish_name(candidate) or raw_finish
                piece, new_calls = _read_parts(candidate)
                if piece:
                    text.append(piece)
                    yield TextDelta(piece)
                for call in new_calls:
                    # Gemini streams whole calls, never argument fragments.
                    yield ToolCallDelta(len(calls), call.id, call.name, call.raw_arguments)
                    calls.append(call)
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()
        if last_response is None:
            raise self._error(LLMBadResponseError, "the response stream was empty")
        if raw_finish in _BAD_CALL_REASONS and not calls:
            calls.append(_malformed_call(last, request))
        yield ProviderResult(
            text="".join(text),
            tool_calls=calls,
            finish_reason=_finish(raw_finish, calls, last_response),
            raw_finish_reason=raw_finish,
            usage=usage,
            model=model,
        )

    def _translate(self, exc: Exception) -> LLMError | None:
        if isinstance(exc, genai_errors.APIError):
            headers = getattr(exc.response, "headers", None)
            return error_for_status(
                int(exc.code or 500),
                str(exc.message or exc),
                provider=self.provider,
                model=self.model,
                headers=headers,
                retry_after=_retry_info(exc.details),
            )
        return None

    @staticmethod
    async def close_sdk(sdk: Any) -> None:
        await sdk.aio.aclose()
        sdk.close()


def to_gemini_contents(messages: Sequence[Message]) -> list[types.Content]:
    calls = tool_calls_by_id(messages)
    out: list[types.Content] = []
    for m in messages:
        if m.role == "system":
            continue
        if m.role == "user":
            role, parts = "user", [_part(p) for p in m.parts if isinstance(p, ImagePart) or p.text]
        elif m.role == "assistant":
            role, parts = "model", ([types.Part(text=m.content)] if m.content else [])
            parts.extend(_function_call_part(c) for c in m.tool_calls)
        else:
            role, parts = "user", [_function_response_part(m, calls)]
        if not parts:
            continue
        if out and out[-1].role == role:
            out[-1].parts = [*(out[-1].parts or []), *parts]
        else:
            out.append(types.Content(role=role, parts=parts))
    return out


def gemini_tool_config(choice: Any) -> types.ToolConfig:
    if isinstance(choice, Mapping):
        calling = types.FunctionCallingConfig(mode="ANY", allowed_function_names=[choice["name"]])
    else:
        calling = types.FunctionCallingConfig(mode={"auto": "AUTO", "required": "ANY", "none": "NONE"}[choice])
    return types.ToolConfig(function_calling_config=calling)


def _part(part: Any) -> types.Part:
    if isinstance(part, ImagePart):
        if part.is_inline:
            media_type, data = part.inline_data()
            return types.Part(inline_data=types.Blob(mime_type=media_type, data=base64.b64decode(data)))
        media_type = mimetypes.guess_type(part.url.split("?", 1)[0])[0] or "image/jpeg"
        return types.Part(file_data=types.FileData(file_uri=part.url, mime_type=media_type))
    return types.Part(text=part.text)


def _function_call_part(call: ToolCall) -> types.Part:
    data = call.provider_data or {}
    function_call = types.FunctionCall(
        # Our own ids (Gemini sent none) must not go back: the API would not recognise them.
        id=call.id if data.get("native_id") else None,
        name=call.name,
        args=call.arguments or {},
    )
    signature = data.get("thought_signature")
    return types.Part(
        function_call=function_call,
        thought_signature=base64.b64decode(signature) if signature else None,
    )


def _function_response_part(m: Any, calls: Mapping[str, ToolCall]) -> types.Part:
    call = calls.get(m.tool_call_id)
    name = m.name or (call.name if call else None)
    if not name:
        raise LLMError(
            f"tool result {m.tool_call_id!r} matches no tool call in the conversation; Gemini needs the tool name",
            provider="google_ai",
        )
    native = bool(call and (call.provider_data or {}).get("native_id"))
    return types.Part(
        function_response=types.FunctionResponse(
            id=m.tool_call_id if native else None,
            name=name,
            response={"error" if m.is_error else "output": m.content},
        )
    )


def _candidate(response: Any) -> Any:
    if response.candidates:
        return response.candidates[0]
    feedback = getattr(response, "prompt_feedback", None)
    if feedback is not None and getattr(feedback, "block_reason", None):
        return None  # a blocked prompt: an empty, content-filtered answer, not an error
    raise LLMBadResponseError("the response has no candidates", provider="google_ai")


def _read_parts(candidate: Any) -> tuple[str, list[ToolCall]]:
    text: list[str] = []
    calls: list[ToolCall] = []
    content = getattr(candidate, "content", None) if candidate is not None else None
    for part in (content.parts if content is not None else None) or []:
        if part.function_call is not None:
            fc = part.function_call
            data: dict[str, Any] = {"native_id": bool(fc.id)}
            if part.thought_signature:
                # base64 keeps provider_data JSON-serialisable for storage between turns.
                data["thought_signature"] = base64.b64encode(part.thought_signature).decode("ascii")
            calls.append(make_tool_call(fc.id or new_call_id(), fc.name or "", dict(fc.args or {}), provider_data=data))
        elif part.text and not part.thought:
            text.append(part.text)
    return "".join(text), calls


def _malformed_call(candidate: Any, request: ChatRequest) -> ToolCall:
    message = (getattr(candidate, "finish_message", None) or "").strip()
    name = _guess_tool_name(message, request.forced_tool, [t.name for t in request.tools])
    return ToolCall(
        id=new_call_id(),
        name=name,
        arguments=None,
        raw_arguments=message,
        error=f"the model produced a malformed function call: {message or 'no details'}",
    )


def _guess_tool_name(message: str, forced: str | None, names: Collection[str]) -> str:
    if forced:
        return forced
    for match in _CALLED_NAME.finditer(message):
        candidate = match.group(1).rsplit(".", 1)[-1]
        if candidate in names:
            return candidate
    names = list(names)
    return names[0] if len(names) == 1 else ""


def _finish_name(candidate: Any) -> str | None:
    reason = getattr(candidate, "finish_reason", None) if candidate is not None else None
    if reason is None:
        return None
    return str(getattr(reason, "value", reason))


def _finish(raw: str | None, calls: list[ToolCall], response: Any) -> FinishReason:
    if raw is None and response is not None and not response.candidates:
        return "content_filter"
    if calls:
        return "tool_calls" if raw in (None, "STOP", *_BAD_CALL_REASONS) else _FINISH.get(raw, "other")
    return _FINISH.get(raw or "STOP", "other")


def _usage(meta: Any) -> Usage:
    if meta is None:
        return Usage()
    completion = (meta.candidates_token_count or 0) + (getattr(meta, "thoughts_token_count", 0) or 0)
    return Usage(prompt_tokens=meta.prompt_token_count or 0, completion_tokens=completion)


def _retry_info(details: Any) -> float | None:
    """Gemini says how long to back off in a google.rpc.RetryInfo detail rather than a header."""
    error = details.get("error") if isinstance(details, dict) else None
    for item in (error or {}).get("details") or []:
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("RetryInfo"):
            match = _RETRY_DELAY.match(str(item.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None
