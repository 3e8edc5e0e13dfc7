"""The LLM layer through the real SDKs against the scripted fake provider over real HTTP.

Every behaviour is checked for each adapter (OpenAI, Azure OpenAI, Anthropic, Gemini): the same
script, rendered by the fake in each wire format, must come out as the same provider-neutral result.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mirix.llm import (
    NO_KEY_NEEDED,
    AssistantMessage,
    CallRecord,
    Completion,
    ImagePart,
    LLMBadResponseError,
    LLMConfigurationError,
    LLMContextWindowError,
    LLMProviderError,
    LLMRateLimitError,
    LLMRegistry,
    LLMTimeoutError,
    RetryPolicy,
    SystemMessage,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolResultMessage,
    ToolSpec,
    UserMessage,
    create_llm_client,
)
from mirix.schemas.config import LLMConfig
from tests.fakes import FakeProvider, Fault, Reply

PROVIDERS = ["openai", "azure_openai", "anthropic", "google_ai"]
FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.01)
MEMORY_TOOL = ToolSpec(
    "trigger_memory_update",
    "Update memories",
    {
        "type": "object",
        "properties": {"memory_types": {"type": "array", "items": {"type": "string"}}},
        "required": ["memory_types"],
    },
)
FINISH_TOOL = ToolSpec("finish", "Stop here")
CONVERSATION = [SystemMessage("You are a memory agent."), UserMessage("Remember that I like green tea.")]
PNG = b"\x89PNG\r\n\x1a\nfake-image"


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider() as provider:
        yield provider


class Recorded:
    def __init__(self) -> None:
        self.calls: list[CallRecord] = []

    async def __call__(self, record: CallRecord) -> None:
        self.calls.append(record)


@pytest.fixture
def records() -> Recorded:
    return Recorded()


@pytest.fixture
async def registry(records: Recorded) -> AsyncIterator[LLMRegistry]:
    reg = LLMRegistry(recorder=records, retry=FAST_RETRY, timeout=5.0, env={})
    yield reg
    await reg.aclose_all()


def config_for(provider: str, fake: FakeProvider, **overrides: Any) -> LLMConfig:
    base: dict[str, Any] = {
        "openai": {"model": "gpt-4o-mini", "model_endpoint": fake.openai_base_url},
        "azure_openai": {
            "model": "gpt-4o",
            "azure_endpoint": fake.url,
            "azure_deployment": "memory-deployment",
            "api_version": "2024-10-21",
        },
        "anthropic": {"model": "claude-sonnet-4-5", "model_endpoint": fake.url},
        "google_ai": {"model": "gemini-2.5-flash", "model_endpoint": fake.url},
    }[provider]
    return LLMConfig(model_endpoint_type=provider, **{"api_key": "test-key", **base, **overrides})


def wire_model(provider: str, config: LLMConfig) -> str:
    return config.azure_deployment if provider == "azure_openai" else config.model  # type: ignore[return-value]


async def collect(stream: AsyncIterator[Any]) -> list[Any]:
    return [event async for event in stream]


def tool_call_count(provider: str, body: dict[str, Any]) -> int:
    """Tool calls the request carried back in the assistant turn, counted in each wire format."""
    if provider in ("openai", "azure_openai"):
        return sum(len(m.get("tool_calls") or []) for m in body["messages"])
    if provider == "anthropic":
        return sum(1 for m in body["messages"] for b in m["content"] if b["type"] == "tool_use")
    return sum(1 for c in body["contents"] for p in c["parts"] if "functionCall" in p)


# -- plain completions ---------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_text_completion_with_usage(
    provider: str, fake: FakeProvider, registry: LLMRegistry, records: Recorded
) -> None:
    fake.queue(Reply.text("Noted: green tea.", prompt_tokens=42, completion_tokens=7))
    config = config_for(provider, fake)
    completion = await registry.get(config).complete(CONVERSATION)

    assert completion.text == "Noted: green tea."
    assert completion.tool_calls == ()
    assert completion.finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (42, 7)
    assert completion.usage.total_tokens == 49
    assert completion.provider == provider
    assert completion.model == wire_model(provider, config)
    assert completion.latency_ms > 0
    (request,) = fake.requests
    assert request.system == "You are a memory agent."
    assert request.model == wire_model(provider, config)
    assert "green tea" in request.prompt_text
    (record,) = records.calls
    assert record.ok and record.attempts == 1 and not record.streamed


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_tool_call_with_arguments(provider: str, fake: FakeProvider, registry: LLMRegistry) -> None:
    fake.queue(Reply.tool_call("trigger_memory_update", {"memory_types": ["episodic", "semantic"]}))
    completion = await registry.get(config_for(provider, fake)).complete(CONVERSATION, tools=[MEMORY_TOOL])

    assert completion.finish_reason == "tool_calls"
    (call,) = completion.tool_calls
    assert call.name == "trigger_memory_update"
    assert call.arguments == {"memory_types": ["episodic", "semantic"]}
    assert call.ok and call.id
    assert fake.requests[0].tools == ("trigger_memory_update",)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_several_tool_calls(provider: str, fake: FakeProvider, registry: LLMRegistry) -> None:
    fake.queue(
        Reply.tool_calls(
            [("trigger_memory_update", {"memory_types": ["core"]}), ("finish", {})], content="Saving, then done."
        )
    )
    completion = await registry.get(config_for(provider, fake)).complete(CONVERSATION, tools=[MEMORY_TOOL, FINISH_TOOL])

    assert completion.text == "Saving, then done."
    assert [(c.name, c.arguments) for c in completion.tool_calls] == [
        ("trigger_memory_update", {"memory_types": ["core"]}),
        ("finish", {}),
    ]
    assert len({c.id for c in completion.tool_calls}) == 2


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_tool_result_round_trip_has_the_provider_shape(
    provider: str, fake: FakeProvider, registry: LLMRegistry
) -> None:
    client = registry.get(config_for(provider, fake))
    fake.queue(
        Reply.tool_calls([("trigger_memory_update", {"memory_types": ["episodic"]}), ("finish", {})]),
        Reply.text("All saved."),
    )
    first = await client.complete(CONVERSATION, tools=[MEMORY_TOOL, FINISH_TOOL])
    save, done = first.tool_calls
    follow_up = [
        *CONVERSATION,
        first.as_message(),
        ToolResultMessage(save.id, "saved 1 episodic memory"),
        ToolResultMessage(done.id, "tool failed: nothing to finish", is_error=True),
    ]
    second = await client.complete(follow_up, tools=[MEMORY_TOOL, FINISH_TOOL])

    assert second.text == "All saved."
    body = fake.requests[1].body
    assert tool_call_count(provider, body) == 2
    if provider in ("openai", "azure_openai"):
        assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "tool", "tool"]
        assistant = body["messages"][2]
        assert assistant["tool_calls"][0] == {
            "id": save.id,
            "type": "function",
            "function": {"name": "trigger_memory_update", "arguments": '{"memory_types": ["episodic"]}'},
        }
        assert body["messages"][3] == {"role": "tool", "tool_call_id": save.id, "content": "saved 1 episodic memory"}
        assert body["messages"][4]["tool_call_id"] == done.id
    elif provider == "anthropic":
        assert body["system"] == "You are a memory agent."
        assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
        assert body["messages"][1]["content"][0] == {
            "type": "tool_use",
            "id": save.id,
            "name": "trigger_memory_update",
            "input": {"memory_types": ["episodic"]},
        }
        # Both results travel in one user turn, as the API requires after parallel calls.
        assert body["messages"][2]["content"] == [
            {"type": "tool_result", "tool_use_id": save.id, "content": "saved 1 episodic memory"},
            {
                "type": "tool_result",
                "tool_use_id": done.id,
                "content": "tool failed: nothing to finish",
                "is_error": True,
            },
        ]
    else:
        assert body["systemInstruction"]["parts"] == [{"text": "You are a memory agent."}]
        assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
        assert body["contents"][1]["parts"][0]["functionCall"] == {
            "name": "trigger_memory_update",
            "args": {"memory_types": ["episodic"]},
        }
        assert body["contents"][2]["parts"] == [
            {"functionResponse": {"name": "trigger_memory_update", "response": {"output": "saved 1 episodic memory"}}},
            {"functionResponse": {"name": "finish", "response": {"error": "tool failed: nothing to finish"}}},
        ]


# -- streaming -----------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_streaming_text_then_final_completion(
    provider: str, fake: FakeProvider, registry: LLMRegistry, records: Recorded
) -> None:
    text = "Green tea noted. I will remember it for you."
    fake.queue(Reply.text(text, prompt_tokens=30, completion_tokens=11))
    events = await collect(registry.get(config_for(provider, fake)).stream(CONVERSATION))

    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 1
    assert "".join(d.text for d in deltas) == text
    final = events[-1]
    assert isinstance(final, Completion)
    assert all(not isinstance(e, Completion) for e in events[:-1])
    assert final.text == text and final.finish_reason == "stop"
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (30, 11)
    assert fake.requests[0].stream is True
    (record,) = records.calls
    assert record.streamed and (record.prompt_tokens, record.completion_tokens) == (30, 11)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_streaming_tool_calls_are_reassembled(provider: str, fake: FakeProvider, registry: LLMRegistry) -> None:
    args = {"memory_types": ["episodic", "semantic"], "note": "a value long enough to be split in fragments"}
    fake.queue(Reply.tool_calls([("trigger_memory_update", args), ("finish", {"ok": True})], content="Updating."))
    events = await collect(
        registry.get(config_for(provider, fake)).stream(CONVERSATION, tools=[MEMORY_TOOL, FINISH_TOOL])
    )

    final = events[-1]
    assert isinstance(final, Completion)
    assert final.text == "Updating."
    assert final.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in final.tool_calls] == [
        ("trigger_memory_update", args),
        ("finish", {"ok": True}),
    ]
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert {d.index for d in deltas} == {0, 1}
    fragments = "".join(d.arguments_delta for d in deltas if d.index == 0)
    assert fragments.replace(" ", "") == final.tool_calls[0].raw_arguments.replace(" ", "")
    assert [d.name for d in deltas if d.name] == ["trigger_memory_update", "finish"]


async def test_stream_closed_early_is_recorded(fake: FakeProvider, registry: LLMRegistry, records: Recorded) -> None:
    fake.queue(Reply.text("one two three four five six seven eight"))
    stream = registry.get(config_for("openai", fake)).stream(CONVERSATION)
    async for event in stream:
        assert isinstance(event, TextDelta)
        break
    await stream.aclose()  # type: ignore[attr-defined]

    (record,) = records.calls
    assert record.error == "stream closed before completion" and record.streamed


# -- faults --------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_rate_limit_is_retried_then_succeeds(
    provider: str, fake: FakeProvider, registry: LLMRegistry, records: Recorded
) -> None:
    fake.queue(Fault.status(429, "slow down", retry_after=0.01), Reply.text("after retry"))
    completion = await registry.get(config_for(provider, fake)).complete(CONVERSATION)

    assert completion.text == "after retry"
    first, second = fake.requests
    assert second.received_at - first.received_at >= 0.009  # waited the Retry-After it was given
    (record,) = records.calls
    assert record.ok and record.attempts == 2


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_rate_limit_retries_streams_before_the_first_event(
    provider: str, fake: FakeProvider, registry: LLMRegistry
) -> None:
    fake.queue(Fault.status(429, retry_after=0.01), Reply.text("streamed after retry"))
    events = await collect(registry.get(config_for(provider, fake)).stream(CONVERSATION))

    assert events[-1].text == "streamed after retry"
    assert len(fake.requests) == 2


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_server_errors_exhaust_attempts(
    provider: str, fake: FakeProvider, registry: LLMRegistry, records: Recorded
) -> None:
    fake.queue(*[Fault.status(500, "boom")] * FAST_RETRY.max_attempts, Reply.text("never reached"))
    with pytest.raises(LLMProviderError) as raised:
        await registry.get(config_for(provider, fake)).complete(CONVERSATION)

    assert raised.value.status == 500
    assert raised.value.transient is True
    assert raised.value.provider == provider
    assert "boom" in raised.value.message
    assert len(fake.requests) == FAST_RETRY.max_attempts
    (record,) = records.calls
    assert not record.ok and record.error_type == "LLMProviderError" and record.attempts == 3
    assert "boom" in (record.error or "")


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_client_errors_are_not_retried(provider: str, fake: FakeProvider, registry: LLMRegistry) -> None:
    fake.queue(Fault.status(401, "bad key"), Fault.status(400, "This model's maximum context length is 8192 tokens"))
    client = registry.get(config_for(provider, fake))
    with pytest.raises(LLMProviderError) as unauthorised:
        await client.complete(CONVERSATION)
    with pytest.raises(LLMContextWindowError) as overflow:
        await client.complete(CONVERSATION)

    assert unauthorised.value.status == 401 and unauthorised.value.transient is False
    assert overflow.value.status == 400 and overflow.value.transient is False
    assert len(fake.requests) == 2


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_rate_limit_exhausted_raises_rate_limit_error(
    provider: str, fake: FakeProvider, records: Recorded
) -> None:
    registry = LLMRegistry(recorder=records, retry=RetryPolicy(max_attempts=2, base_delay=0.001), env={})
    fake.queue(Fault.status(429, retry_after=0.01), Fault.status(429, retry_after=0.01))
    try:
        with pytest.raises(LLMRateLimitError) as raised:
            await registry.get(config_for(provider, fake)).complete(CONVERSATION)
    finally:
        await registry.aclose_all()

    assert raised.value.status == 429 and raised.value.transient
    assert raised.value.retry_after == pytest.approx(0.01)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_timeout_raises_llm_timeout_error(provider: str, fake: FakeProvider, records: Recorded) -> None:
    registry = LLMRegistry(
        recorder=records, retry=RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.01), timeout=0.25, env={}
    )
    fake.queue(Fault.timeout(30), Fault.timeout(30))
    started = time.monotonic()
    try:
        with pytest.raises(LLMTimeoutError) as raised:
            await registry.get(config_for(provider, fake)).complete(CONVERSATION)
    finally:
        await registry.aclose_all()

    assert time.monotonic() - started < 2.0
    assert raised.value.transient and raised.value.provider == provider
    assert len(fake.requests) == 2  # a timeout is transient, so it was retried once
    (record,) = records.calls
    assert record.error_type == "LLMTimeoutError" and record.latency_ms >= 400


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_unparseable_tool_call_becomes_a_tool_call_with_error(
    provider: str, fake: FakeProvider, registry: LLMRegistry
) -> None:
    fake.queue(Fault.malformed_tool_call("trigger_memory_update", '{"memory_types": [episodic]}'))
    completion = await registry.get(config_for(provider, fake)).complete(CONVERSATION, tools=[MEMORY_TOOL])

    (call,) = completion.tool_calls
    assert call.name == "trigger_memory_update"
    assert call.arguments is None and not call.ok
    assert call.error
    assert completion.finish_reason == "tool_calls"


@pytest.mark.parametrize("provider", ["openai", "azure_openai"])
async def test_openai_format_answers_are_read_leniently(
    provider: str, fake: FakeProvider, registry: LLMRegistry
) -> None:
    """Compatible servers leave out fields OpenAI always sends; what is there is read, what is
    unusable is a bad-response error, never a crash."""
    client = registry.get(config_for(provider, fake))
    fake.queue(Fault.body({"choices": [{"message": {"content": "hi"}}]}))
    completion = await client.complete(CONVERSATION)
    assert completion.text == "hi" and completion.finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (0, 0)

    call = {"id": "c1", "type": "function", "function": {"name": "finish", "arguments": "{}"}}
    fake.queue(Fault.body({"choices": [{"message": {"content": None, "tool_calls": [call, "junk"]}}]}))
    completion = await client.complete(CONVERSATION, tools=[MEMORY_TOOL])
    assert [c.name for c in completion.tool_calls] == ["finish"] and completion.finish_reason == "tool_calls"

    for body in ({"object": "chat.completion", "choices": []}, {"choices": [{"index": 0}]}, ["not", "an", "object"]):
        fake.queue(Fault.body(body))
        with pytest.raises(LLMBadResponseError):
            await client.complete(CONVERSATION)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_unparseable_streamed_tool_call_becomes_a_tool_call_with_error(
    provider: str, fake: FakeProvider, registry: LLMRegistry
) -> None:
    fake.queue(Fault.malformed_tool_call("trigger_memory_update", '{"memory_types": [episodic]}'))
    events = await collect(registry.get(config_for(provider, fake)).stream(CONVERSATION, tools=[MEMORY_TOOL]))

    (call,) = events[-1].tool_calls
    assert call.name == "trigger_memory_update" and call.arguments is None and call.error


@pytest.mark.parametrize("provider", ["openai", "azure_openai", "anthropic"])
async def test_truncated_tool_arguments_are_repaired(provider: str, fake: FakeProvider, registry: LLMRegistry) -> None:
    # Gemini cannot carry broken arguments on the wire (it reports MALFORMED_FUNCTION_CALL instead).
    fake.queue(Fault.malformed_tool_call("trigger_memory_update", '{"memory_types": ["episodic", "core"'))
    completion = await registry.get(config_for(provider, fake)).complete(CONVERSATION, tools=[MEMORY_TOOL])

    (call,) = completion.tool_calls
    assert call.arguments == {"memory_types": ["episodic", "core"]}
    assert call.repaired and call.ok


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_tool_call_written_as_text_is_recovered(provider: str, fake: FakeProvider, registry: LLMRegistry) -> None:
    fake.queue(
        Reply.text(
            'I will save it.\n```json\n{"name": "trigger_memory_update", "arguments": {"memory_types": ["core"]}}\n```'
        )
    )
    completion = await registry.get(config_for(provider, fake)).complete(CONVERSATION, tools=[MEMORY_TOOL])

    (call,) = completion.tool_calls
    assert (call.name, call.arguments) == ("trigger_memory_update", {"memory_types": ["core"]})
    assert completion.text == "I will save it."
    assert completion.finish_reason == "tool_calls"


# -- recording -----------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_recorder_sees_provider_model_tokens_latency_and_failures(
    provider: str, fake: FakeProvider, registry: LLMRegistry, records: Recorded
) -> None:
    config = config_for(provider, fake)
    client = registry.get(config)
    fake.queue(Reply.text("fine", prompt_tokens=12, completion_tokens=3), Fault.status(403, "forbidden"))
    await client.complete(CONVERSATION, metadata={"agent_id": "agent-1"})
    with pytest.raises(LLMProviderError):
        await client.complete(CONVERSATION, metadata={"agent_id": "agent-1"})

    success, failure = records.calls
    assert (success.provider, success.model) == (provider, wire_model(provider, config))
    assert (success.prompt_tokens, success.completion_tokens) == (12, 3)
    assert success.latency_ms > 0 and success.error is None and success.finish_reason == "stop"
    assert success.metadata == {"agent_id": "agent-1"}
    assert (failure.provider, failure.model) == (provider, wire_model(provider, config))
    assert failure.error and "forbidden" in failure.error
    assert failure.error_type == "LLMProviderError"
    assert failure.latency_ms > 0 and (failure.prompt_tokens, failure.completion_tokens) == (0, 0)
    assert failure.metadata == {"agent_id": "agent-1"}


async def test_a_failing_recorder_does_not_fail_the_call(fake: FakeProvider) -> None:
    async def broken(record: CallRecord) -> None:
        raise RuntimeError("database down")

    registry = LLMRegistry(recorder=broken, retry=FAST_RETRY, env={})
    try:
        completion = await registry.get(config_for("openai", fake)).complete(CONVERSATION)
    finally:
        await registry.aclose_all()
    assert completion.text == "ok"


# -- registry ------------------------------------------------------------------------------------


async def test_registry_reuses_clients_per_configuration(fake: FakeProvider, registry: LLMRegistry) -> None:
    config = config_for("openai", fake)
    client = registry.get(config)

    assert registry.get(config) is client
    assert registry.get(config.model_dump()) is client  # an equal config from a dict
    other_key = registry.get(config.model_copy(update={"api_key": "another-key"}))
    other_model = registry.get(config.model_copy(update={"model": "gpt-4o"}))
    assert other_key is not client and other_model is not client
    assert other_model.sdk is client.sdk  # type: ignore[attr-defined] - same key and URL share a pool
    assert other_key.sdk is not client.sdk  # type: ignore[attr-defined]
    assert len(registry) == 3 and registry.sdk_client_count == 2


async def test_registry_keys_environment_api_keys_by_hash(fake: FakeProvider) -> None:
    env = {"OPENAI_API_KEY": "env-key-1"}
    registry = LLMRegistry(env=env, retry=FAST_RETRY)
    config = config_for("openai", fake, api_key=None)
    try:
        first = registry.get(config)
        assert registry.get(config) is first
        env["OPENAI_API_KEY"] = "env-key-2"
        assert registry.get(config) is not first
        await registry.get(config).complete(CONVERSATION)
    finally:
        await registry.aclose_all()
    assert fake.requests[0].headers["authorization"] == "Bearer env-key-2"
    with pytest.raises(RuntimeError):
        registry.get(config)


@pytest.mark.parametrize(
    ("provider", "env_name"),
    [
        ("openai", "OPENAI_API_KEY"),
        ("azure_openai", "AZURE_API_KEY"),
        ("anthropic", "ANTHROPIC_API_KEY"),
        ("google_ai", "GEMINI_API_KEY"),
    ],
)
async def test_missing_api_key_names_the_provider(provider: str, env_name: str, fake: FakeProvider) -> None:
    registry = LLMRegistry(env={})
    with pytest.raises(LLMConfigurationError, match=provider) as raised:
        registry.get(config_for(provider, fake, api_key=None))
    assert env_name in raised.value.message
    assert raised.value.provider == provider and not raised.value.transient

    with_env = LLMRegistry(env={env_name: "from-env"}, retry=FAST_RETRY)
    try:
        await with_env.get(config_for(provider, fake, api_key=None)).complete(CONVERSATION)
    finally:
        await with_env.aclose_all()


async def test_google_api_key_fallback(fake: FakeProvider) -> None:
    registry = LLMRegistry(env={"GOOGLE_API_KEY": "google-key"}, retry=FAST_RETRY)
    try:
        await registry.get(config_for("google_ai", fake, api_key=None)).complete(CONVERSATION)
    finally:
        await registry.aclose_all()
    assert fake.requests[0].headers["x-goog-api-key"] == "google-key"


@pytest.mark.parametrize("endpoint_type", ["ollama", "vllm", "lmstudio"])
async def test_local_openai_compatible_servers_need_no_key(endpoint_type: str, fake: FakeProvider) -> None:
    # MIRIX configs address local servers by host:port; their OpenAI API lives under /v1.
    config = LLMConfig(model="llama3.2", model_endpoint_type=endpoint_type, model_endpoint=fake.url)
    registry = LLMRegistry(env={}, retry=FAST_RETRY)
    fake.queue(Reply.text("local answer"))
    try:
        client = registry.get(config)
        completion = await client.complete(CONVERSATION, max_tokens=64)
    finally:
        await registry.aclose_all()

    assert completion.text == "local answer" and completion.provider == endpoint_type
    (request,) = fake.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {NO_KEY_NEEDED}"
    assert request.body["max_tokens"] == 64 and "max_completion_tokens" not in request.body


async def test_unsupported_endpoint_type_is_a_configuration_error(fake: FakeProvider) -> None:
    with pytest.raises(LLMConfigurationError, match="bedrock"):
        LLMRegistry(env={}).get(LLMConfig(model="m", model_endpoint_type="bedrock", api_key="k"))


async def test_standalone_client_owns_and_closes_its_sdk(fake: FakeProvider, records: Recorded) -> None:
    client = create_llm_client(config_for("anthropic", fake), recorder=records, retry=FAST_RETRY, env={})
    completion = await client.complete(CONVERSATION)
    await client.aclose()

    assert completion.text == "ok" and len(records.calls) == 1
    assert client.sdk.is_closed()  # type: ignore[attr-defined]


# -- request mapping -----------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_images_map_to_each_provider_format(provider: str, fake: FakeProvider, registry: LLMRegistry) -> None:
    inline = ImagePart.from_bytes(PNG, "image/png")
    _, payload = inline.inline_data()
    message = UserMessage([TextPart("What is in these?"), inline, ImagePart("https://example.com/cat.jpg", "low")])
    await registry.get(config_for(provider, fake)).complete([message])

    body = fake.requests[0].body
    if provider in ("openai", "azure_openai"):
        assert body["messages"][0]["content"] == [
            {"type": "text", "text": "What is in these?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{payload}"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
        ]
    elif provider == "anthropic":
        assert body["messages"][0]["content"] == [
            {"type": "text", "text": "What is in these?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": payload}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        ]
    else:
        parts = body["contents"][0]["parts"]
        assert parts[0] == {"text": "What is in these?"}
        blob = parts[1]["inlineData"]
        assert blob["data"] == payload
        assert (blob.get("mimeType") or blob.get("mime_type")) == "image/png"
        file_data = parts[2]["fileData"]
        assert (file_data.get("fileUri") or file_data.get("file_uri")) == "https://example.com/cat.jpg"
        assert (file_data.get("mimeType") or file_data.get("mime_type")) == "image/jpeg"


TOOL_CHOICES: dict[str, list[Any]] = {
    "openai": ["auto", "required", "none", {"type": "function", "function": {"name": "finish"}}],
    "azure_openai": ["auto", "required", "none", {"type": "function", "function": {"name": "finish"}}],
    "anthropic": [{"type": "auto"}, {"type": "any"}, {"type": "none"}, {"type": "tool", "name": "finish"}],
    "google_ai": [
        {"mode": "AUTO"},
        {"mode": "ANY"},
        {"mode": "NONE"},
        {"mode": "ANY", "allowedFunctionNames": ["finish"]},
    ],
}


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_tool_choice_maps_to_each_provider(provider: str, fake: FakeProvider, registry: LLMRegistry) -> None:
    client = registry.get(config_for(provider, fake))
    for choice in ("auto", "required", "none", {"name": "finish"}):
        await client.complete(CONVERSATION, tools=[MEMORY_TOOL, FINISH_TOOL], tool_choice=choice)
    await client.complete(CONVERSATION, tools=[MEMORY_TOOL])  # no choice: the provider default

    def sent(body: dict[str, Any]) -> Any:
        if provider == "google_ai":
            return (body.get("toolConfig") or {}).get("functionCallingConfig")
        return body.get("tool_choice")

    assert [sent(r.body) for r in fake.requests] == [*TOOL_CHOICES[provider], None]


async def test_bad_tool_choice_is_rejected_before_any_request(fake: FakeProvider, registry: LLMRegistry) -> None:
    client = registry.get(config_for("openai", fake))
    with pytest.raises(LLMConfigurationError, match="not among the tools"):
        await client.complete(CONVERSATION, tools=[MEMORY_TOOL], tool_choice={"name": "finish"})
    with pytest.raises(LLMConfigurationError, match="needs tools"):
        await client.complete(CONVERSATION, tool_choice="required")
    assert fake.requests == []


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_call_overrides_and_config_defaults(provider: str, fake: FakeProvider, registry: LLMRegistry) -> None:
    client = registry.get(config_for(provider, fake, temperature=0.3, max_tokens=300))
    await client.complete(CONVERSATION)
    await client.complete(CONVERSATION, temperature=0.0, max_tokens=20)

    def sampling(body: dict[str, Any]) -> tuple[Any, Any]:
        if provider in ("openai", "azure_openai"):
            return body.get("temperature"), body.get("max_completion_tokens")
        if provider == "anthropic":
            return body.get("temperature"), body.get("max_tokens")
        generation = body.get("generationConfig") or {}
        return generation.get("temperature"), generation.get("maxOutputTokens")

    defaults, overridden = (sampling(r.body) for r in fake.requests)
    if provider == "anthropic":  # this SDK generation has no sampling parameters; max_tokens is required
        assert (defaults, overridden) == ((None, 300), (None, 20))
    else:
        assert (defaults, overridden) == ((0.3, 300), (0.0, 20))


async def test_openai_reasoning_models_get_developer_role_and_no_temperature(
    fake: FakeProvider, registry: LLMRegistry
) -> None:
    await registry.get(config_for("openai", fake, model="o3-mini", reasoning_effort="low")).complete(CONVERSATION)

    body = fake.requests[0].body
    assert body["messages"][0]["role"] == "developer"
    assert "temperature" not in body
    assert body["reasoning_effort"] == "low"


async def test_azure_uses_deployment_path_and_api_version(fake: FakeProvider, registry: LLMRegistry) -> None:
    await registry.get(config_for("azure_openai", fake)).complete(CONVERSATION)

    (request,) = fake.requests
    assert request.path == "/openai/deployments/memory-deployment/chat/completions"
    assert request.query["api-version"] == "2024-10-21"
    assert request.headers["api-key"] == "test-key"


async def test_anthropic_merges_consecutive_turns_and_drops_empty_ones(
    fake: FakeProvider, registry: LLMRegistry
) -> None:
    call = ToolCall("toolu_1", "finish", {})
    messages = [
        SystemMessage("first rule"),
        UserMessage("one"),
        UserMessage("two"),
        SystemMessage("second rule"),
        AssistantMessage("", [call]),
        ToolResultMessage("toolu_1", "done"),
        UserMessage("and now?"),
        AssistantMessage(""),
    ]
    await registry.get(config_for("anthropic", fake)).complete(messages, tools=[FINISH_TOOL])

    body = fake.requests[0].body
    assert body["system"] == "first rule\n\nsecond rule"
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "finish", "input": {}}]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "done"},
                {"type": "text", "text": "and now?"},
            ],
        },
    ]


async def test_gemini_echoes_thought_signatures_and_native_ids(fake: FakeProvider, registry: LLMRegistry) -> None:
    native = ToolCall("fc-1", "finish", {}, provider_data={"native_id": True, "thought_signature": "c2lnbmF0dXJl"})
    ours = ToolCall("call_local", "trigger_memory_update", {"memory_types": ["core"]})
    messages = [
        UserMessage("go"),
        AssistantMessage(None, [native, ours]),
        ToolResultMessage("fc-1", "finished"),
        ToolResultMessage("call_local", "saved"),
    ]
    await registry.get(config_for("google_ai", fake)).complete(messages, tools=[MEMORY_TOOL, FINISH_TOOL])

    contents = fake.requests[0].body["contents"]
    first, second = contents[1]["parts"]
    assert first["functionCall"] == {"id": "fc-1", "name": "finish", "args": {}}
    assert first["thoughtSignature"] == "c2lnbmF0dXJl"
    assert "id" not in second["functionCall"]  # an id Gemini never sent must not go back
    responses = [p["functionResponse"] for p in contents[2]["parts"]]
    assert responses == [
        {"id": "fc-1", "name": "finish", "response": {"output": "finished"}},
        {"name": "trigger_memory_update", "response": {"output": "saved"}},
    ]


async def test_gemini_function_call_ids_are_kept_when_sent(fake: FakeProvider, registry: LLMRegistry) -> None:
    from tests.fakes import ToolCall as ScriptedCall

    fake.queue(Reply.tool_calls([ScriptedCall("finish", {}, id="gemini-call-7")]))
    completion = await registry.get(config_for("google_ai", fake)).complete(CONVERSATION, tools=[FINISH_TOOL])

    (call,) = completion.tool_calls
    assert call.id == "gemini-call-7"
    assert call.provider_data == {"native_id": True}


async def test_clients_satisfy_the_protocol(fake: FakeProvider, registry: LLMRegistry) -> None:
    from mirix.llm import LLMClient

    for provider in PROVIDERS:
        client = registry.get(config_for(provider, fake))
        assert isinstance(client, LLMClient)
        assert client.provider == provider


def test_importing_the_package_imports_no_sdk() -> None:
    import subprocess
    import sys

    code = "import sys, mirix.llm; print([m for m in ('openai', 'anthropic', 'google.genai') if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
