"""The fake LLM provider, exercised through the real SDKs over real HTTP.

These tests pin the wire formats: if an SDK upgrade stops parsing the fake's answers, the suite
says so here rather than in confusing failures of the memory server's own tests.
"""

from __future__ import annotations

import asyncio
import json
import math
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anthropic
import httpx
import httpx2
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types
from google.genai.client import AsyncClient

from tests.fakes import FakeProvider, Fault, RecordedRequest, Reply, ToolCall, embed
from tests.fakes.replies import estimate_tokens

MEMORY_TOOL = {
    "type": "function",
    "function": {
        "name": "trigger_memory_update",
        "description": "Update memories",
        "parameters": {
            "type": "object",
            "properties": {"memory_types": {"type": "array", "items": {"type": "string"}}},
            "required": ["memory_types"],
        },
    },
}
ANTHROPIC_TOOL = {
    "name": "trigger_memory_update",
    "description": "Update memories",
    "input_schema": MEMORY_TOOL["function"]["parameters"],
}
USER = [{"role": "user", "content": "Remember that I like green tea."}]
PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider() as provider:
        yield provider


def openai_client(fake: FakeProvider, **kwargs: object) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="test", **kwargs)  # type: ignore[arg-type]


def anthropic_client(fake: FakeProvider, **kwargs: object) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=fake.url, api_key="test", **kwargs)  # type: ignore[arg-type]


def gemini_client(fake: FakeProvider, **options: object) -> AsyncClient:
    http_options = genai_types.HttpOptions(base_url=fake.url, **options)  # type: ignore[arg-type]
    return genai.Client(api_key="test", http_options=http_options).aio


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (math.hypot(*a) * math.hypot(*b))


# -- OpenAI ----------------------------------------------------------------------------------


async def test_openai_text_reply_with_usage(fake: FakeProvider) -> None:
    fake.queue(Reply.text("hello there"))
    async with openai_client(fake) as client:
        completion = await client.chat.completions.create(model="gpt-4o-mini", messages=USER)

    assert completion.choices[0].message.content == "hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-4o-mini"
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens == estimate_tokens(fake.requests[0].prompt_text)
    assert usage.completion_tokens == estimate_tokens("hello there")
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_openai_parallel_tool_calls(fake: FakeProvider) -> None:
    fake.queue(
        Reply.tool_calls(
            [("trigger_memory_update", {"memory_types": ["episodic"]}), ToolCall("finish", {}, id="call_own_id")]
        )
    )
    async with openai_client(fake) as client:
        completion = await client.chat.completions.create(model="m", messages=USER, tools=[MEMORY_TOOL])

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls or []
    assert [c.function.name for c in calls] == ["trigger_memory_update", "finish"]
    assert json.loads(calls[0].function.arguments) == {"memory_types": ["episodic"]}
    assert calls[0].id.startswith("call_") and calls[1].id == "call_own_id"
    assert fake.requests[0].tools == ("trigger_memory_update",)


async def test_openai_streaming_text_and_usage_chunk(fake: FakeProvider) -> None:
    text = "Green tea noted. I will remember it for you."
    fake.queue(Reply.text(text))
    async with openai_client(fake) as client:
        stream = await client.chat.completions.create(
            model="m", messages=USER, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]

    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 1
    assert "".join(pieces) == text
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == estimate_tokens(text)
    assert fake.requests[0].stream is True


async def test_openai_streaming_tool_calls_reassemble(fake: FakeProvider) -> None:
    args = {"memory_types": ["episodic", "semantic"], "note": "a long enough value to be split"}
    fake.queue(Reply.tool_calls([("trigger_memory_update", args), ("finish", {"ok": True})], content="Updating."))
    async with openai_client(fake) as client:
        stream = await client.chat.completions.create(model="m", messages=USER, tools=[MEMORY_TOOL], stream=True)
        calls: dict[int, dict[str, str]] = {}
        content = ""
        finish = None
        async for chunk in stream:
            assert chunk.usage is None  # not requested, so never sent
            delta = chunk.choices[0].delta
            content += delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
            for tc in delta.tool_calls or []:
                call = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                call["id"] += tc.id or ""
                call["name"] += (tc.function.name or "") if tc.function else ""
                call["arguments"] += (tc.function.arguments or "") if tc.function else ""

    assert content == "Updating."
    assert finish == "tool_calls"
    assert [calls[i]["name"] for i in sorted(calls)] == ["trigger_memory_update", "finish"]
    assert json.loads(calls[0]["arguments"]) == args
    assert json.loads(calls[1]["arguments"]) == {"ok": True}
    assert calls[0]["id"] and calls[0]["id"] != calls[1]["id"]


async def test_openai_sdk_stream_helper_accumulates_tool_calls(fake: FakeProvider) -> None:
    fake.queue(Reply.tool_call("trigger_memory_update", {"memory_types": ["core"]}))
    async with openai_client(fake) as client:
        async with client.chat.completions.stream(model="m", messages=USER, tools=[MEMORY_TOOL]) as stream:
            async for _ in stream:
                pass
            final = await stream.get_final_completion()

    call = (final.choices[0].message.tool_calls or [])[0]
    assert call.function.name == "trigger_memory_update"
    assert json.loads(call.function.arguments) == {"memory_types": ["core"]}


async def test_azure_openai_chat_and_embeddings(fake: FakeProvider) -> None:
    fake.queue(Reply.text("from azure"))
    async with openai.AsyncAzureOpenAI(azure_endpoint=fake.url, api_version="2024-10-21", api_key="k") as client:
        completion = await client.chat.completions.create(model="my-gpt-deployment", messages=USER)
        embeddings = await client.embeddings.create(model="my-embedding-deployment", input="green tea")

    assert completion.choices[0].message.content == "from azure"
    assert len(embeddings.data[0].embedding) == fake.embedding_dim
    chat, emb = fake.requests
    assert (chat.provider, chat.path) == ("azure", "/openai/deployments/my-gpt-deployment/chat/completions")
    assert chat.query["api-version"] == "2024-10-21"
    assert chat.headers["api-key"] == "k"
    assert (emb.provider, emb.path) == ("azure", "/openai/deployments/my-embedding-deployment/embeddings")


async def test_openai_embeddings_are_deterministic_and_similarity_aware(fake: FakeProvider) -> None:
    fake.queue(Reply.text("never consumed by embeddings"))
    texts = ["I like green tea", "green tea is what I like", "the train leaves at nine"]
    async with openai_client(fake) as client:
        default = await client.embeddings.create(model="text-embedding-3-small", input=texts)  # SDK asks for base64
        floats = await client.embeddings.create(model="text-embedding-3-small", input=texts[0], encoding_format="float")
        small = await client.embeddings.create(model="text-embedding-3-small", input="tea", dimensions=64)

    vectors = [d.embedding for d in default.data]
    assert [d.index for d in default.data] == [0, 1, 2]
    assert vectors[0] == pytest.approx(floats.data[0].embedding, abs=1e-6)
    assert vectors[0] == pytest.approx(embed(texts[0]), abs=1e-6)
    assert cosine(vectors[0], vectors[1]) > 0.7
    assert abs(cosine(vectors[0], vectors[2])) < 0.3
    assert len(small.data[0].embedding) == 64
    assert default.usage.prompt_tokens == sum(estimate_tokens(t) for t in texts)
    assert fake.embedding_requests[0].inputs == tuple(texts)
    assert fake.pending == (Reply.text("never consumed by embeddings"),)


# -- Anthropic -------------------------------------------------------------------------------


async def test_anthropic_text_reply_with_usage(fake: FakeProvider) -> None:
    fake.queue(Reply.text("Noted."))
    async with anthropic_client(fake) as client:
        message = await client.messages.create(
            model="claude-sonnet-4-5", max_tokens=256, system="You are a memory agent.", messages=USER
        )

    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "Noted."  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == estimate_tokens(fake.requests[0].prompt_text)
    assert message.usage.output_tokens == estimate_tokens("Noted.")
    recorded = fake.requests[0]
    assert (recorded.provider, recorded.model, recorded.system) == (
        "anthropic",
        "claude-sonnet-4-5",
        "You are a memory agent.",
    )
    # Anthropic SDK 2.x sends the key as a bearer token; 0.x sent x-api-key.
    assert recorded.headers.get("authorization") == "Bearer test" or recorded.headers.get("x-api-key") == "test"
    assert "anthropic-version" in recorded.headers


async def test_anthropic_tool_use(fake: FakeProvider) -> None:
    fake.queue(Reply.tool_call("trigger_memory_update", {"memory_types": ["episodic"]}, content="Let me save that."))
    async with anthropic_client(fake) as client:
        message = await client.messages.create(model="claude", max_tokens=256, messages=USER, tools=[ANTHROPIC_TOOL])

    assert message.stop_reason == "tool_use"
    text, tool = message.content
    assert text.type == "text" and text.text == "Let me save that."
    assert tool.type == "tool_use"
    assert (tool.name, tool.input) == ("trigger_memory_update", {"memory_types": ["episodic"]})
    assert tool.id.startswith("toolu_")


async def test_anthropic_stream_helper_text_and_tool_use(fake: FakeProvider) -> None:
    fake.queue(
        Reply.text("Streaming a reply in several pieces."),
        Reply.tool_call("trigger_memory_update", {"memory_types": ["episodic", "procedural"]}),
    )
    async with anthropic_client(fake) as client:
        async with client.messages.stream(model="claude", max_tokens=256, messages=USER) as stream:
            pieces = [piece async for piece in stream.text_stream]
            text_message = await stream.get_final_message()
        async with client.messages.stream(
            model="claude", max_tokens=256, messages=USER, tools=[ANTHROPIC_TOOL]
        ) as stream:
            tool_message = await stream.get_final_message()

    assert len(pieces) > 1 and "".join(pieces) == "Streaming a reply in several pieces."
    assert text_message.stop_reason == "end_turn"
    assert text_message.usage.output_tokens == estimate_tokens("Streaming a reply in several pieces.")
    assert text_message.usage.input_tokens > 0
    tool = tool_message.content[0]
    assert tool.type == "tool_use"
    assert tool.input == {"memory_types": ["episodic", "procedural"]}
    assert tool_message.stop_reason == "tool_use"


# -- Gemini ----------------------------------------------------------------------------------


async def test_gemini_text_and_function_call(fake: FakeProvider) -> None:
    fake.queue(Reply.text("Hi from Gemini"), Reply.tool_call("trigger_memory_update", {"memory_types": ["core"]}))
    config = genai_types.GenerateContentConfig(
        system_instruction="You are a memory agent.",
        tools=[
            genai_types.Tool(
                function_declarations=[genai_types.FunctionDeclaration(name="trigger_memory_update", description="x")]
            )
        ],
    )
    async with gemini_client(fake) as client:
        text = await client.models.generate_content(model="gemini-2.5-flash", contents="hello", config=config)
        call = await client.models.generate_content(model="gemini-2.5-flash", contents="hello", config=config)

    assert text.text == "Hi from Gemini"
    assert text.candidates and text.candidates[0].finish_reason == genai_types.FinishReason.STOP
    assert text.usage_metadata is not None
    assert text.usage_metadata.candidates_token_count == estimate_tokens("Hi from Gemini")
    assert text.usage_metadata.total_token_count == (
        text.usage_metadata.prompt_token_count + text.usage_metadata.candidates_token_count
    )
    assert call.function_calls is not None
    assert (call.function_calls[0].name, call.function_calls[0].args) == (
        "trigger_memory_update",
        {"memory_types": ["core"]},
    )
    recorded = fake.requests[0]
    assert recorded.provider == "gemini" and recorded.model == "gemini-2.5-flash"
    assert recorded.system == "You are a memory agent." and recorded.tools == ("trigger_memory_update",)
    assert recorded.headers["x-goog-api-key"] == "test"


async def test_gemini_stream_and_embeddings(fake: FakeProvider) -> None:
    fake.queue(Reply.text("a streamed gemini answer in pieces"))
    pieces = []
    last = None
    async with gemini_client(fake) as client:
        async for chunk in await client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"):
            pieces.append(chunk.text)
            last = chunk
        single = await client.models.embed_content(model="gemini-embedding-001", contents="green tea")
        batch = await client.models.embed_content(
            model="gemini-embedding-001",
            contents=["green tea", "black coffee"],
            config=genai_types.EmbedContentConfig(output_dimensionality=32),
        )

    assert len(pieces) > 1 and "".join(pieces) == "a streamed gemini answer in pieces"
    assert last is not None and last.usage_metadata is not None and last.usage_metadata.candidates_token_count
    assert single.embeddings and single.embeddings[0].values == pytest.approx(embed("green tea"))
    assert batch.embeddings and [len(e.values or []) for e in batch.embeddings] == [32, 32]
    assert fake.requests[0].stream and fake.requests[0].query == {"alt": "sse"}


# -- Ollama ----------------------------------------------------------------------------------


async def test_ollama_embed(fake: FakeProvider) -> None:
    async with httpx.AsyncClient(base_url=fake.url) as http:
        batch = await http.post("/api/embed", json={"model": "nomic-embed-text", "input": ["a", "b c"]})
        single = await http.post("/api/embed", json={"model": "nomic-embed-text", "input": "a"})

    assert batch.status_code == 200
    body = batch.json()
    assert body["model"] == "nomic-embed-text"
    assert body["embeddings"] == [pytest.approx(embed("a")), pytest.approx(embed("b c"))]
    assert len(single.json()["embeddings"]) == 1
    assert fake.requests[0].provider == "ollama"


# -- faults ----------------------------------------------------------------------------------


async def test_rate_limit_is_retried_by_the_sdk(fake: FakeProvider) -> None:
    fake.queue(Fault.status(429, retry_after=0.01), Reply.text("after retry"))
    async with openai_client(fake, max_retries=2) as client:
        completion = await client.chat.completions.create(model="m", messages=USER)

    assert completion.choices[0].message.content == "after retry"
    first, second = fake.requests
    assert second.headers["x-stainless-retry-count"] == "1"
    assert second.received_at - first.received_at < 0.4  # retry-after-ms honoured, not the 0.5 s back-off


async def test_rate_limit_and_server_error_surface_without_retries(fake: FakeProvider) -> None:
    fake.queue(Fault.status(429, "slow down"), Fault.status(500))
    async with openai_client(fake, max_retries=0) as client:
        with pytest.raises(openai.RateLimitError) as rate_limited:
            await client.chat.completions.create(model="m", messages=USER)
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(model="m", messages=USER)

    assert rate_limited.value.status_code == 429
    assert "slow down" in rate_limited.value.message


async def test_faults_in_anthropic_and_gemini_formats(fake: FakeProvider) -> None:
    fake.queue(Fault.status(429), Fault.status(529), Fault.status(429), Fault.status(500, "boom"))
    async with anthropic_client(fake, max_retries=0) as client:
        with pytest.raises(anthropic.RateLimitError):
            await client.messages.create(model="c", max_tokens=10, messages=USER)
        with pytest.raises(anthropic.OverloadedError):
            await client.messages.create(model="c", max_tokens=10, messages=USER)
    async with gemini_client(fake) as gemini:
        with pytest.raises(genai_errors.ClientError) as client_error:
            await gemini.models.generate_content(model="g", contents="hi")
        with pytest.raises(genai_errors.ServerError) as server_error:
            await gemini.models.generate_content(model="g", contents="hi")

    assert (client_error.value.code, client_error.value.status) == (429, "RESOURCE_EXHAUSTED")
    assert (server_error.value.code, server_error.value.message) == (500, "boom")


async def test_timeout_fault_trips_the_client_timeout(fake: FakeProvider) -> None:
    fake.queue(Fault.timeout(seconds=30))
    async with openai_client(fake, max_retries=0, timeout=0.2) as client:
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            await client.chat.completions.create(model="m", messages=USER)

    assert time.monotonic() - started < 1.0


async def test_timeout_then_retry_gets_next_scripted_answer(fake: FakeProvider) -> None:
    fake.queue(Fault.timeout(seconds=30), Reply.text("second try"))
    async with openai_client(fake, max_retries=1, timeout=0.1) as client:
        completion = await client.chat.completions.create(model="m", messages=USER)

    assert completion.choices[0].message.content == "second try"
    assert len(fake.requests) == 2


async def test_gemini_retry_options_and_timeout(fake: FakeProvider) -> None:
    fake.queue(Fault.status(429), Fault.status(503), Reply.text("third time"), Fault.timeout(seconds=30))
    retry = genai_types.HttpRetryOptions(attempts=3, initial_delay=0.01, max_delay=0.02)
    async with gemini_client(fake, retry_options=retry) as gemini:
        answer = await gemini.models.generate_content(model="g", contents="hi")
    async with gemini_client(fake, timeout=150) as gemini:  # milliseconds
        with pytest.raises(httpx2.TimeoutException):
            await gemini.models.generate_content(model="g", contents="hi")

    assert answer.text == "third time"
    assert len(fake.requests) == 4


async def test_malformed_tool_call_in_each_format(fake: FakeProvider) -> None:
    fake.queue(Fault.malformed_tool_call(), Fault.malformed_tool_call(), Fault.malformed_tool_call())
    async with openai_client(fake) as client:
        completion = await client.chat.completions.create(model="m", messages=USER, tools=[MEMORY_TOOL])
    async with anthropic_client(fake) as client:
        message = await client.messages.create(model="c", max_tokens=10, messages=USER, tools=[ANTHROPIC_TOOL])
    async with gemini_client(fake) as gemini:
        response = await gemini.models.generate_content(model="g", contents="hi")

    arguments = (completion.choices[0].message.tool_calls or [])[0].function.arguments
    with pytest.raises(json.JSONDecodeError):
        json.loads(arguments)
    tool = message.content[0]
    assert tool.type == "tool_use" and not isinstance(tool.input, dict)
    assert (
        response.candidates and response.candidates[0].finish_reason == genai_types.FinishReason.MALFORMED_FUNCTION_CALL
    )
    assert response.function_calls is None


async def test_malformed_tool_call_breaks_anthropic_stream_accumulation(fake: FakeProvider) -> None:
    fake.queue(Fault.malformed_tool_call(raw_arguments='{"memory_types": [episodic]}'))
    async with anthropic_client(fake) as client:
        with pytest.raises(ValueError, match="Unable to parse tool parameter JSON"):
            async with client.messages.stream(model="c", max_tokens=10, messages=USER) as stream:
                await stream.get_final_message()


async def test_embedding_faults_do_not_touch_the_chat_queue(fake: FakeProvider) -> None:
    fake.fail_embeddings(Fault.status(503))
    async with httpx.AsyncClient(base_url=fake.url) as http:
        failed = await http.post("/api/embed", json={"model": "e", "input": "x"})
        ok = await http.post("/api/embed", json={"model": "e", "input": "x"})

    assert failed.status_code == 503 and "error" in failed.json()
    assert ok.status_code == 200


# -- scripting -------------------------------------------------------------------------------


async def test_responder_answers_from_the_request_when_queue_is_empty(fake: FakeProvider) -> None:
    def responder(request: RecordedRequest) -> Reply:
        if "trigger_memory_update" in request.tools:
            return Reply.tool_call("trigger_memory_update", {"memory_types": ["episodic"]})
        return Reply.text(f"system was: {request.system}")

    fake.responder = responder
    fake.queue(Reply.text("queued first"))
    async with openai_client(fake) as client:
        queued = await client.chat.completions.create(model="m", messages=USER)
        plain = await client.chat.completions.create(
            model="m", messages=[{"role": "system", "content": "be brief"}, *USER]
        )
        tool = await client.chat.completions.create(model="m", messages=USER, tools=[MEMORY_TOOL])

    assert queued.choices[0].message.content == "queued first"
    assert plain.choices[0].message.content == "system was: be brief"
    assert (tool.choices[0].message.tool_calls or [])[0].function.name == "trigger_memory_update"


async def test_async_responder_and_default_ok(fake: FakeProvider) -> None:
    async with anthropic_client(fake) as client:
        default = await client.messages.create(model="c", max_tokens=10, messages=USER)

        async def responder(request: RecordedRequest) -> Reply:
            await asyncio.sleep(0)
            return Reply.text(request.model)

        fake.responder = responder
        echoed = await client.messages.create(model="claude-x", max_tokens=10, messages=USER)

    assert default.content[0].text == "ok"  # type: ignore[union-attr]
    assert echoed.content[0].text == "claude-x"  # type: ignore[union-attr]


async def test_responder_errors_fail_the_test_at_stop() -> None:
    def broken(request: RecordedRequest) -> Reply:
        raise KeyError("bug in responder")

    fake = FakeProvider(responder=broken)
    await fake.start()
    async with openai_client(fake) as client:
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(model="m", messages=USER)
    with pytest.raises(RuntimeError, match="responder failed") as stopped:
        await fake.stop()

    assert isinstance(stopped.value.__cause__, KeyError)
    assert len(fake.requests) == 1  # x-should-retry: false stopped the SDK from retrying


async def test_latency_and_request_recording() -> None:
    async with FakeProvider(latency=0.15) as fake:
        async with openai_client(fake) as client:
            started = time.monotonic()
            await client.chat.completions.create(model="m", messages=USER, temperature=0.2)
            elapsed = time.monotonic() - started

    assert 0.15 <= elapsed < 0.6
    (recorded,) = fake.requests
    assert recorded.operation == "chat" and recorded.path == "/v1/chat/completions" and recorded.method == "POST"
    assert recorded.body["temperature"] == 0.2 and recorded.body["messages"] == USER
    assert recorded.headers["authorization"] == "Bearer test"
    assert "green tea" in recorded.prompt_text


async def test_chunk_delay_paces_streams_and_the_log_tells_finished_from_abandoned() -> None:
    words = " ".join(f"w{i}" for i in range(40))
    async with FakeProvider(chunk_delay=0.02) as fake:
        fake.queue(Reply.text("one two three four"), Reply.text(words))
        async with openai_client(fake) as client:
            started = time.monotonic()
            stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
            arrivals = [time.monotonic() - started async for _ in stream]
            stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
            async for _ in stream:
                break
            await stream.close()
            async with asyncio.timeout(5):
                while True:
                    if fake.streams[1].ended_at is not None:
                        break
                    await asyncio.sleep(0.01)

    finished, abandoned = fake.streams
    assert finished.complete and finished.sent == finished.total == len(arrivals) + 1  # + "[DONE]"
    assert arrivals[-1] >= 0.02 * (len(arrivals) - 1), "events are spaced by the delay"
    assert finished.request.stream and abandoned.request is fake.requests[1]
    assert abandoned.ended_at is not None and not abandoned.complete
    assert abandoned.sent < abandoned.total // 2


async def test_two_fakes_are_independent() -> None:
    async with FakeProvider() as one, FakeProvider() as two:
        one.queue(Reply.text("one"))
        async with openai_client(two) as client:
            answer = await client.chat.completions.create(model="m", messages=USER)

    assert answer.choices[0].message.content == "ok"
    assert one.port != two.port and one.requests == [] and len(two.requests) == 1


async def test_standalone_server_answers_with_default_script() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.provider_server",
        "--port",
        "0",
        "--latency-ms",
        "50",
        "--reply-text",
        "benchmark reply",
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        banner = (await asyncio.wait_for(process.stdout.readline(), timeout=10)).decode()
        url = banner.rsplit(" ", 1)[-1].strip()
        assert url.startswith("http://127.0.0.1:")
        async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="test") as client:
            started = time.monotonic()
            completion = await client.chat.completions.create(model="m", messages=USER)
            elapsed = time.monotonic() - started
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert completion.choices[0].message.content == "benchmark reply"
    assert elapsed >= 0.05
