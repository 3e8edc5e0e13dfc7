"""OpenAI chat completions: OpenAI itself, Azure OpenAI, and any OpenAI-compatible server
(Ollama, vLLM, LM Studio, DeepSeek, xAI, Together, Groq, Mistral) through its base URL."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from mirix.llm.client import BaseChatClient, ChatRequest, ClientOptions, ProviderResult
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
from mirix.llm.types import (
    AssistantMessage,
    FinishReason,
    ImagePart,
    Message,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)

# o-series and gpt-5 reject a non-default temperature and want the developer role for instructions.
_REASONING_MODEL = re.compile(r"^(?:[\w.-]+/)?(?:o\d|gpt-5)", re.IGNORECASE)
_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "length": "length",
    "content_filter": "content_filter",
}


def create_sdk_client(endpoint: Endpoint, timeout: float) -> openai.AsyncOpenAI:
    # max_retries=0: retry.py is the only retry policy.
    if endpoint.kind == "azure_openai":
        return openai.AsyncAzureOpenAI(
            azure_endpoint=endpoint.base_url,
            api_version=endpoint.api_version,
            api_key=endpoint.api_key,
            max_retries=0,
            timeout=timeout,
        )
    return openai.AsyncOpenAI(base_url=endpoint.base_url, api_key=endpoint.api_key, max_retries=0, timeout=timeout)


class OpenAIChatClient(BaseChatClient):
    def __init__(
        self,
        sdk: openai.AsyncOpenAI,
        *,
        model: str,
        provider: str = "openai",
        options: ClientOptions | None = None,
        owns_sdk: bool = False,
        reasoning_effort: str | None = None,
    ) -> None:
        super().__init__(sdk, model=model, provider=provider, options=options or ClientOptions(), owns_sdk=owns_sdk)
        # OpenAI's own API wants max_completion_tokens (max_tokens is refused by reasoning models);
        # compatible servers mostly understand only max_tokens.
        self._official = provider in ("openai", "azure_openai")
        self._reasoning = self._official and bool(_REASONING_MODEL.match(model))
        self._reasoning_effort = reasoning_effort

    # -- requests --------------------------------------------------------------------------
    # The body below is plain JSON already, so it goes out through the SDK's generic ``post`` (its
    # documented way to call any endpoint): ``chat.completions.create`` would first walk every
    # message and tool schema through its TypedDict transformer, ~3 ms of CPU per call with the
    # memory agents' prompts. Retries, errors, Azure's deployment URLs and parsing stay the SDK's.

    def _body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": to_openai_messages(request.messages, system_role="developer" if self._reasoning else "system"),
        }
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": dict(t.parameters)},
                }
                for t in request.tools
            ]
            if request.tool_choice is not None:
                body["tool_choice"] = openai_tool_choice(request.tool_choice)
        if request.temperature is not None and not self._reasoning:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body["max_completion_tokens" if self._official else "max_tokens"] = request.max_tokens
        if self._reasoning and self._reasoning_effort:
            body["reasoning_effort"] = self._reasoning_effort
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    async def _complete_once(self, request: ChatRequest) -> ProviderResult:
        # The JSON as it came (cast_to=object): building the SDK's ChatCompletion models cost more
        # CPU than the rest of the call, for the few fields read here.
        response = await self.sdk.post("/chat/completions", body=self._body(request, stream=False), cast_to=object)
        choices = response.get("choices") if isinstance(response, dict) else None
        if not choices or not isinstance(choices[0], dict):
            raise self._error(LLMBadResponseError, "the response has no choices")
        choice = choices[0]
        message = choice.get("message")
        if not isinstance(message, dict):
            raise self._error(LLMBadResponseError, "the response's choice has no message")
        calls = [
            make_tool_call(call.get("id"), function.get("name") or "", function.get("arguments"))
            for call in message.get("tool_calls") or []
            if isinstance(call, dict) and isinstance(function := call.get("function"), dict)
        ]
        content, refusal = message.get("content"), message.get("refusal")
        finish_reason = choice.get("finish_reason")
        return ProviderResult(
            text=content or refusal or "",
            tool_calls=calls,
            finish_reason="content_filter" if refusal and not content else _finish(finish_reason, calls),
            raw_finish_reason=finish_reason,
            usage=_usage(response.get("usage")),
            model=response.get("model"),
        )

    async def _stream_once(self, request: ChatRequest) -> AsyncIterator[TextDelta | ToolCallDelta | ProviderResult]:
        stream = await self.sdk.post(
            "/chat/completions",
            body=self._body(request, stream=True),
            cast_to=ChatCompletion,
            stream=True,
            stream_cls=openai.AsyncStream[ChatCompletionChunk],
        )
        text: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        finish: str | None = None
        usage = Usage()
        model: str | None = None
        try:
            async for chunk in stream:
                model = chunk.model or model
                if chunk.usage is not None:
                    usage = _usage(chunk.usage)
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                finish = choice.finish_reason or finish
                delta = choice.delta
                if delta is None:
                    continue
                if delta.content:
                    text.append(delta.content)
                    yield TextDelta(delta.content)
                for tc in delta.tool_calls or []:
                    index = tc.index if tc.index is not None else len(calls)
                    slot = calls.setdefault(index, {"id": None, "name": "", "arguments": []})
                    name = tc.function.name if tc.function else None
                    fragment = (tc.function.arguments if tc.function else None) or ""
                    slot["id"] = slot["id"] or tc.id
                    if name:
                        # Some compatible servers repeat the full name on every chunk.
                        slot["name"] = name if slot["name"] in ("", name) else slot["name"] + name
                    slot["arguments"].append(fragment)
                    if tc.id or name or fragment:
                        yield ToolCallDelta(index=index, id=tc.id, name=name, arguments_delta=fragment)
        finally:
            await stream.close()
        tool_calls = [
            make_tool_call(slot["id"], slot["name"], "".join(slot["arguments"])) for _, slot in sorted(calls.items())
        ]
        yield ProviderResult(
            text="".join(text),
            tool_calls=tool_calls,
            finish_reason=_finish(finish, tool_calls),
            raw_finish_reason=finish,
            usage=usage,
            model=model,
        )

    # -- errors and lifecycle --------------------------------------------------------------

    def _translate(self, exc: Exception) -> LLMError | None:
        if isinstance(exc, openai.APIStatusError):
            return error_for_status(
                exc.status_code,
                _message(exc),
                provider=self.provider,
                model=self.model,
                headers=exc.response.headers,
            )
        if isinstance(exc, openai.APITimeoutError):
            return self._error(LLMTimeoutError, f"request timed out: {exc}")
        if isinstance(exc, openai.APIConnectionError):
            return self._error(LLMConnectionError, f"connection failed: {exc}")
        if isinstance(exc, openai.APIResponseValidationError):
            return self._error(LLMBadResponseError, f"unexpected response shape: {exc}")
        if isinstance(exc, openai.APIError):  # e.g. an error event in the middle of a stream
            return LLMProviderError(_message(exc), status=None, provider=self.provider, model=self.model)
        return None

    @staticmethod
    async def close_sdk(sdk: Any) -> None:
        await sdk.close()


def to_openai_messages(messages: Sequence[Message], *, system_role: str = "system") -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            out.append({"role": system_role, "content": m.content})
        elif m.role == "user":
            if isinstance(m.content, str):
                out.append({"role": "user", "content": m.content})
            else:
                out.append({"role": "user", "content": [_part(p) for p in m.parts]})
        elif m.role == "assistant":
            out.append(_assistant(m))  # type: ignore[arg-type]
        else:
            out.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content})  # type: ignore[union-attr]
    return out


def openai_tool_choice(choice: Any) -> Any:
    if isinstance(choice, Mapping):
        return {"type": "function", "function": {"name": choice["name"]}}
    return choice  # "auto" | "required" | "none" are OpenAI's own words


def _part(part: Any) -> dict[str, Any]:
    if isinstance(part, ImagePart):
        image: dict[str, Any] = {"url": part.url}
        if part.detail:
            image["detail"] = part.detail
        return {"type": "image_url", "image_url": image}
    return {"type": "text", "text": part.text}


def _assistant(m: AssistantMessage) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": m.content or None}
    if m.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": _arguments_text(c)}}
            for c in m.tool_calls
        ]
    return message


def _arguments_text(call: ToolCall) -> str:
    # Echo what the model should have sent: the repaired object when there is one.
    if call.arguments is not None:
        return json.dumps(call.arguments, ensure_ascii=False)
    return call.raw_arguments or "{}"


def _finish(reason: str | None, calls: list[ToolCall]) -> FinishReason:
    if calls and reason in (None, "stop", "tool_calls", "function_call"):
        return "tool_calls"  # some compatible servers say "stop" after a tool call
    return _FINISH.get(reason or "stop", "other")


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    if not isinstance(usage, dict):  # a streamed chunk's model
        usage = {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens}
    return Usage(prompt_tokens=usage.get("prompt_tokens") or 0, completion_tokens=usage.get("completion_tokens") or 0)


def _message(exc: openai.APIError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            code = inner.get("code")
            return f"{inner['message']} ({code})" if code else str(inner["message"])
    return exc.message
