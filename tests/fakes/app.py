"""The Starlette app of the fake provider: routes per provider, one core per operation.

Every chat route funnels into ``_Handlers.chat`` and every embedding route into
``_Handlers.embeddings``, so latency, faults and recording behave identically whichever SDK
is talking; provider modules only parse and render.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes import anthropic_format, gemini_format, ollama_format, openai_format
from tests.fakes.embedder import embed
from tests.fakes.recorded import Operation, Provider, RecordedRequest
from tests.fakes.replies import RawBody, Reply, StatusFault, TimeoutFault, estimate_tokens
from tests.fakes.script import Script, StreamLog
from tests.fakes.wire import ChatFormat, ErrorResponse, RenderContext, default_message, retry_headers

Describe = Callable[[dict[str, Any]], tuple[str, tuple[str, ...], str]]
RenderError = Callable[[StatusFault], ErrorResponse]

_OPENAI = openai_format.OpenAIFormat()
_ANTHROPIC = anthropic_format.AnthropicFormat()
_GEMINI = gemini_format.GeminiFormat()


def build_app(script: Script) -> Starlette:
    h = _Handlers(script)
    routes = [
        Route("/v1/chat/completions", h.openai_chat, methods=["POST"]),
        Route("/v1/embeddings", h.openai_embeddings, methods=["POST"]),
        Route("/openai/deployments/{deployment}/chat/completions", h.openai_chat, methods=["POST"]),
        Route("/openai/deployments/{deployment}/embeddings", h.openai_embeddings, methods=["POST"]),
        Route("/openai/v1/chat/completions", h.openai_chat, methods=["POST"]),
        Route("/openai/v1/embeddings", h.openai_embeddings, methods=["POST"]),
        Route("/v1/messages", h.anthropic_messages, methods=["POST"]),
        Route("/{version}/models/{target}", h.gemini, methods=["POST"]),
        Route("/api/embed", h.ollama_embed, methods=["POST"]),
        Route("/api/embeddings", h.ollama_embed, methods=["POST"]),
    ]
    return Starlette(routes=routes, exception_handlers={_BadRequest: _bad_request})


async def _until_disconnect(request: Request) -> None:
    # Once the body is read, the next ASGI message can only be the client hanging up.
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _wait(request: Request, seconds: float) -> bool:
    """Sleep ``seconds`` unless the client disconnects first; True if it is still there.

    Watching for the disconnect lets a timeout fault of minutes end as soon as the client
    gives up, so neither the test nor the server's shutdown waits for it.
    """
    if seconds <= 0:
        return True
    watcher = asyncio.ensure_future(_until_disconnect(request))
    try:
        done, _ = await asyncio.wait({watcher}, timeout=seconds)
        return not done
    finally:
        watcher.cancel()


class _BadRequest(Exception):
    pass


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _BadRequest(f"request body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise _BadRequest("request body must be a JSON object")
    return body


async def _bad_request(request: Request, exc: Exception) -> Response:
    # Every provider wraps errors in an "error" member; a client bug in the test shows as a 400.
    return JSONResponse({"error": {"message": str(exc), "type": "invalid_request_error"}}, status_code=400)


def _error(err: ErrorResponse) -> Response:
    return JSONResponse(err.body, status_code=err.status, headers=err.headers)


async def _events(events: list[str], delay: float, log: StreamLog) -> AsyncIterator[bytes]:
    for index, event in enumerate(events):
        if index and delay > 0:
            await asyncio.sleep(delay)
        yield event.encode()
        log.sent += 1


class _LoggedStream(StreamingResponse):
    """A streamed answer that notes when it is over, however it ends.

    Starlette stops the body iterator when the client disconnects; marking the end here rather than
    in the generator covers a hang-up between two events as well as one during the delay.
    """

    def __init__(self, events: list[str], delay: float, log: StreamLog) -> None:
        super().__init__(
            _events(events, delay, log), media_type="text/event-stream", headers={"cache-control": "no-cache"}
        )
        self._log = log

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._log.ended_at = time.monotonic()


class _Handlers:
    def __init__(self, script: Script) -> None:
        self.script = script

    # -- provider routes -------------------------------------------------------------------

    async def openai_chat(self, request: Request) -> Response:
        body = await _json_body(request)
        deployment = request.path_params.get("deployment")
        provider: Provider = "azure" if request.url.path.startswith("/openai/") else "openai"
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return await self.chat(
            request,
            body,
            provider=provider,
            fmt=_OPENAI,
            model=body.get("model") or deployment or "",
            stream=bool(body.get("stream")),
            describe=openai_format.describe_chat,
            include_usage=include_usage,
        )

    async def openai_embeddings(self, request: Request) -> Response:
        body = await _json_body(request)
        provider: Provider = "azure" if request.url.path.startswith("/openai/") else "openai"
        model = body.get("model") or request.path_params.get("deployment") or ""
        texts = openai_format.embedding_inputs(body)

        def render(vectors: list[list[float]], tokens: int) -> dict[str, Any]:
            return _OPENAI.render_embeddings(vectors, model, tokens, body.get("encoding_format"))

        return await self.embeddings(
            request, body, provider, model, texts, body.get("dimensions"), render, _OPENAI.render_error
        )

    async def anthropic_messages(self, request: Request) -> Response:
        body = await _json_body(request)
        return await self.chat(
            request,
            body,
            provider="anthropic",
            fmt=_ANTHROPIC,
            model=body.get("model", ""),
            stream=bool(body.get("stream")),
            describe=anthropic_format.describe_chat,
        )

    async def gemini(self, request: Request) -> Response:
        body = await _json_body(request)
        model, _, method = request.path_params["target"].rpartition(":")
        if method in ("generateContent", "streamGenerateContent"):
            return await self.chat(
                request,
                body,
                provider="gemini",
                fmt=_GEMINI,
                model=model,
                stream=method == "streamGenerateContent",
                describe=gemini_format.describe_chat,
            )
        if method in ("embedContent", "batchEmbedContents"):
            batch = method == "batchEmbedContents"

            def render(vectors: list[list[float]], tokens: int) -> dict[str, Any]:
                return _GEMINI.render_embeddings(vectors, batch=batch)

            texts = gemini_format.embedding_inputs(body)
            dimension = gemini_format.embedding_dimension(body)
            return await self.embeddings(request, body, "gemini", model, texts, dimension, render, _GEMINI.render_error)
        if method == "countTokens":
            _, _, prompt_text = gemini_format.describe_chat(body.get("generateContentRequest") or body)
            return JSONResponse({"totalTokens": estimate_tokens(prompt_text)})
        return _error(_GEMINI.render_error(StatusFault(404, f"fake provider: unsupported method {method!r}")))

    async def ollama_embed(self, request: Request) -> Response:
        body = await _json_body(request)
        model = body.get("model", "")
        legacy = request.url.path == "/api/embeddings"
        texts = [body.get("prompt", "")] if legacy else ollama_format.embed_inputs(body)

        def render(vectors: list[list[float]], tokens: int) -> dict[str, Any]:
            if legacy:
                return ollama_format.render_legacy(vectors[0])
            return ollama_format.render_embed(vectors, model, tokens)

        def render_error(fault: StatusFault) -> ErrorResponse:
            return ErrorResponse(fault.status, ollama_format.render_error(default_message(fault)), retry_headers(fault))

        return await self.embeddings(
            request, body, "ollama", model, texts, body.get("dimensions"), render, render_error
        )

    # -- shared cores ----------------------------------------------------------------------

    def _record(
        self,
        request: Request,
        body: Any,
        provider: Provider,
        operation: Operation,
        model: str,
        stream: bool,
        **extra: Any,
    ) -> RecordedRequest:
        recorded = RecordedRequest(
            provider=provider,
            operation=operation,
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            headers=dict(request.headers),
            body=body,
            model=model,
            stream=stream,
            received_at=time.monotonic(),
            **extra,
        )
        self.script.record(recorded)
        return recorded

    async def chat(
        self,
        request: Request,
        body: dict[str, Any],
        *,
        provider: Provider,
        fmt: ChatFormat,
        model: str,
        stream: bool,
        describe: Describe,
        include_usage: bool = False,
    ) -> Response:
        system, tools, prompt_text = describe(body)
        recorded = self._record(
            request, body, provider, "chat", model, stream, system=system, tools=tools, prompt_text=prompt_text
        )
        if not await _wait(request, self.script.latency):
            return Response(status_code=499)
        try:
            answer = await self.script.next_answer(recorded)
            while isinstance(answer, TimeoutFault):
                if not await _wait(request, answer.seconds):
                    return Response(status_code=499)
                answer = await self.script.next_answer(recorded)
            if not isinstance(answer, Reply | StatusFault | RawBody):
                raise TypeError(f"responder must return a Reply or a Fault, not {answer!r}")
        except Exception as exc:  # a bug in the test's responder: keep it for stop() to re-raise
            self.script.errors.append(exc)
            failure = fmt.render_error(StatusFault(500, f"fake provider: responder raised {exc!r}"))
            return _error(ErrorResponse(failure.status, failure.body, {**failure.headers, "x-should-retry": "false"}))
        if isinstance(answer, StatusFault):
            return _error(fmt.render_error(answer))
        if isinstance(answer, RawBody):
            return JSONResponse(answer.body, status_code=answer.status)
        return self._render_reply(answer, fmt, model, recorded, include_usage)

    def _render_reply(
        self, reply: Reply, fmt: ChatFormat, model: str, recorded: RecordedRequest, include_usage: bool
    ) -> Response:
        prompt_tokens, completion_tokens = reply.usage(recorded.prompt_text)
        ctx = RenderContext(
            model=model,
            response_id=f"{fmt.response_id_prefix}{self.script.next_id()}",
            created=int(time.time()),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            new_call_id=lambda: f"{fmt.call_id_prefix}{self.script.next_id()}",
            include_usage=include_usage,
        )
        if recorded.stream:
            events = list(fmt.render_stream(reply, ctx))
            log = StreamLog(recorded, total=len(events))
            self.script.streams.append(log)
            return _LoggedStream(events, self.script.chunk_delay, log)
        return JSONResponse(fmt.render(reply, ctx))

    async def embeddings(
        self,
        request: Request,
        body: dict[str, Any],
        provider: Provider,
        model: str,
        texts: list[str],
        dimension: int | None,
        render: Callable[[list[list[float]], int], dict[str, Any]],
        render_error: RenderError,
    ) -> Response:
        self._record(request, body, provider, "embeddings", model, False, inputs=tuple(texts))
        if not await _wait(request, self.script.latency):
            return Response(status_code=499)
        fault = self.script.next_embedding_fault()
        if isinstance(fault, TimeoutFault) and not await _wait(request, fault.seconds):
            return Response(status_code=499)
        if isinstance(fault, StatusFault):
            return _error(render_error(fault))
        size = int(dimension) if dimension else self.script.embedding_dim
        vectors = [embed(text, size) for text in texts]
        tokens = sum(estimate_tokens(text) for text in texts)
        return JSONResponse(render(vectors, tokens))
