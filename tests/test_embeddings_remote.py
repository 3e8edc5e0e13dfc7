"""Remote embedding providers (OpenAI, Azure OpenAI, Gemini, Ollama) against the fake provider over real HTTP."""

from __future__ import annotations

import math
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import openai
import pytest
from google import genai

from mirix.embeddings import (
    AzureOpenAIEmbeddingProvider,
    EmbeddingError,
    EmbeddingProvider,
    RemoteEmbeddingProvider,
    create_embedding_provider,
    supported_kinds,
)
from tests.fakes import FakeProvider, Fault, embed

KINDS = ["openai", "azure_openai", "google_ai", "ollama"]
KEYED_KINDS = ["openai", "azure_openai", "google_ai"]
KEY = "sk-test-secret-key-1234567890"
DIM = 384  # the fake's default vector size
MODELS = {
    "openai": "text-embedding-3-small",
    "azure_openai": "text-embedding-3-small",
    "google_ai": "gemini-embedding-001",
    "ollama": "nomic-embed-text",
}
# Models for which the provider sends no dimension parameter, so the fake answers with its default size.
UNSIZED = {
    "openai": {"model": "my-local-model"},
    "azure_openai": {"model": "my-embedding-deployment"},
    "google_ai": {"send_dimensions": False},
    "ollama": {},
}
# Tiny back-off so retry tests take milliseconds.
FAST = {"retry_base_delay": 0.001, "retry_max_delay": 0.01, "timeout": 5.0}
ENV_VARS = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_API_VERSION",
    "AZURE_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
)
TEXTS = [
    "I like green tea in the morning",
    "green tea in the morning is what I like",
    "the train to Berlin leaves at nine",
    "my cat sleeps on the sofa",
    "the Berlin train leaves at nine tonight",
]

Build = Callable[..., RemoteEmbeddingProvider]


def connection_options(kind: str, root: str) -> dict[str, Any]:
    if kind == "openai":
        return {"api_key": KEY, "base_url": f"{root}/v1"}
    if kind == "azure_openai":
        return {"api_key": KEY, "azure_endpoint": root, "api_version": "2024-10-21"}
    if kind == "google_ai":
        return {"api_key": KEY, "base_url": root}
    return {"base_url": root}


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (math.hypot(*a) * math.hypot(*b))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider() as provider:
        yield provider


@pytest.fixture
async def build(fake: FakeProvider) -> AsyncIterator[Build]:
    """Providers pointed at the fake (or at ``root``), closed after the test."""
    made: list[RemoteEmbeddingProvider] = []

    def make(kind: str, *, root: str | None = None, dim: int = DIM, **overrides: Any) -> RemoteEmbeddingProvider:
        options = {**connection_options(kind, root or fake.url), **FAST, **overrides}
        model = options.pop("model", MODELS[kind])
        provider = create_embedding_provider(kind, model, dim, **options)
        assert isinstance(provider, RemoteEmbeddingProvider)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


# -- the happy path ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_batch_is_one_request_with_vectors_in_order(kind: str, fake: FakeProvider, build: Build) -> None:
    provider = build(kind)
    assert isinstance(provider, EmbeddingProvider)
    assert (provider.provider, provider.dim) == (kind, DIM)

    vectors = await provider.embed(TEXTS)

    assert len(fake.embedding_requests) == 1
    request = fake.embedding_requests[0]
    assert request.inputs == tuple(TEXTS)
    assert len(vectors) == len(TEXTS)
    for text, vector in zip(TEXTS, vectors, strict=True):
        assert len(vector) == DIM
        assert vector == pytest.approx(embed(text, DIM), abs=1e-6)
    expected_path = {
        "openai": "/v1/embeddings",
        "azure_openai": "/openai/deployments/text-embedding-3-small/embeddings",
        "google_ai": "/v1/models/gemini-embedding-001:batchEmbedContents",  # the SDK picks the API version
        "ollama": "/api/embed",
    }[kind]
    assert request.path == expected_path
    assert await provider.embed([]) == []
    assert len(fake.embedding_requests) == 1
    with pytest.raises(TypeError):
        await provider.embed("a single string")


@pytest.mark.parametrize("kind", KINDS)
async def test_related_texts_are_closer_than_unrelated(kind: str, build: Build) -> None:
    tea, tea_again, train, cat, train_again = await build(kind).embed(TEXTS)
    assert cosine(tea, tea_again) > cosine(tea, train)
    assert cosine(tea, tea_again) > cosine(tea, cat)
    assert cosine(train, train_again) > cosine(train, cat)


@pytest.mark.parametrize("kind", KINDS)
async def test_large_inputs_split_at_max_batch_size(kind: str, fake: FakeProvider, build: Build) -> None:
    vectors = await build(kind, max_batch_size=2).embed(TEXTS)

    assert [r.inputs for r in fake.embedding_requests] == [tuple(TEXTS[0:2]), tuple(TEXTS[2:4]), tuple(TEXTS[4:])]
    assert [v == pytest.approx(embed(t, DIM), abs=1e-6) for t, v in zip(TEXTS, vectors, strict=True)] == [True] * 5


# -- retries -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_rate_limit_is_retried(kind: str, fake: FakeProvider, build: Build) -> None:
    fake.fail_embeddings(Fault.status(429, retry_after=0.01))
    vectors = await build(kind).embed(TEXTS[:2])

    assert len(vectors) == 2 and len(vectors[0]) == DIM
    assert len(fake.embedding_requests) == 2
    # One retry policy: the SDK's own retry counter never moves.
    assert all(r.headers.get("x-stainless-retry-count", "0") == "0" for r in fake.embedding_requests)


async def test_retry_after_is_honoured_up_to_the_max_delay(fake: FakeProvider, build: Build) -> None:
    fake.fail_embeddings(Fault.status(429, retry_after=0.05))
    await build("openai", retry_max_delay=0.2).embed(["x"])
    first, second = fake.embedding_requests
    assert second.received_at - first.received_at >= 0.05


@pytest.mark.parametrize("kind", KINDS)
async def test_server_errors_fail_after_max_retries(kind: str, fake: FakeProvider, build: Build) -> None:
    fake.fail_embeddings(*[Fault.status(500)] * 3)
    provider = build(kind, max_retries=2)

    with pytest.raises(EmbeddingError, match=r"server error \(HTTP 500\) after 3 attempts") as failed:
        await provider.embed(["x"])

    assert kind in str(failed.value)
    assert len(fake.embedding_requests) == 3
    assert len(await provider.embed(["x"])) == 1  # the faults are used up: the provider recovers


@pytest.mark.parametrize("kind", KINDS)
async def test_timeouts_are_retried_then_reported(kind: str, fake: FakeProvider, build: Build) -> None:
    fake.fail_embeddings(Fault.timeout(30), Fault.timeout(30), Fault.timeout(30))
    provider = build(kind, timeout=0.3, max_retries=1)

    with pytest.raises(EmbeddingError, match=r"no response within 0.3s after 2 attempts"):
        await provider.embed(["x"])
    assert len(fake.embedding_requests) == 2

    vectors = await provider.embed(["x"])  # one timeout left, then an answer
    assert len(vectors) == 1
    assert len(fake.embedding_requests) == 4


@pytest.mark.parametrize("kind", KINDS)
async def test_connection_refused_names_the_provider_and_the_address(kind: str, build: Build) -> None:
    root = f"http://127.0.0.1:{closed_port()}"
    provider = build(kind, root=root, max_retries=1)

    with pytest.raises(EmbeddingError) as failed:
        await provider.embed(["x"])

    message = str(failed.value)
    assert message.startswith(f"{kind} embeddings")
    assert "cannot connect" in message and root in message and "after 2 attempts" in message
    assert KEY not in message


# -- errors that are not retried ------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_unexpected_dimension_is_an_error(kind: str, fake: FakeProvider, build: Build) -> None:
    provider = build(kind, dim=768, **UNSIZED[kind])

    with pytest.raises(EmbeddingError, match="returned 384-dimensional vectors, but dim is configured as 768"):
        await provider.embed(["x", "y"])
    assert len(fake.embedding_requests) == 1


@pytest.mark.parametrize("status", [401, 403])
@pytest.mark.parametrize("kind", KINDS)
async def test_auth_failures_are_not_retried(kind: str, status: int, fake: FakeProvider, build: Build) -> None:
    # Real services echo (part of) a rejected key; it must not reach our message.
    fake.fail_embeddings(Fault.status(status, f"key {KEY} is not valid here"))

    with pytest.raises(EmbeddingError, match=f"HTTP {status}") as failed:
        await build(kind, api_key=KEY).embed(["x"])

    assert len(fake.embedding_requests) == 1
    message = str(failed.value)
    assert KEY not in message and message.startswith(f"{kind} embeddings")
    if status == 401:
        assert "API key was rejected" in message and "api_key" in message


async def test_gemini_invalid_key_answer_reads_as_unauthorized(fake: FakeProvider, build: Build) -> None:
    # The Generative Language API answers a bad key with 400 INVALID_ARGUMENT.
    fake.fail_embeddings(Fault.status(400, "API key not valid. Please pass a valid API key."))
    with pytest.raises(EmbeddingError, match="API key was rejected.*GEMINI_API_KEY"):
        await build("google_ai").embed(["x"])
    assert len(fake.embedding_requests) == 1


async def test_not_found_says_what_to_check(fake: FakeProvider, build: Build) -> None:
    fake.fail_embeddings(
        Fault.status(404, 'model "nomic-embed-text" not found, try pulling it first'),
        Fault.status(404, "The API deployment for this resource does not exist."),
    )
    with pytest.raises(EmbeddingError, match="ollama pull nomic-embed-text"):
        await build("ollama").embed(["x"])
    with pytest.raises(EmbeddingError, match="deployment 'text-embedding-3-small'.*azure_deployment"):
        await build("azure_openai").embed(["x"])
    assert len(fake.embedding_requests) == 2


# -- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "variables"),
    [
        ("openai", "OPENAI_API_KEY"),
        ("azure_openai", "AZURE_API_KEY or AZURE_OPENAI_API_KEY"),
        ("google_ai", "GEMINI_API_KEY or GOOGLE_API_KEY"),
    ],
)
def test_missing_api_key_fails_at_construction(kind: str, variables: str) -> None:
    options = {k: v for k, v in connection_options(kind, "http://127.0.0.1:1").items() if k != "api_key"}
    if kind == "openai":
        del options["base_url"]  # api.openai.com needs a key; a compatible server may not
    with pytest.raises(EmbeddingError, match=f"needs an API key: pass api_key or set {variables}") as failed:
        create_embedding_provider(kind, MODELS[kind], DIM, **options)
    assert str(failed.value).startswith(f"the {kind} embedding provider")


@pytest.mark.parametrize(
    ("kind", "variable", "header", "value"),
    [
        ("openai", "OPENAI_API_KEY", "authorization", "Bearer from-env"),
        ("azure_openai", "AZURE_API_KEY", "api-key", "from-env"),
        ("azure_openai", "AZURE_OPENAI_API_KEY", "api-key", "from-env"),
        ("google_ai", "GEMINI_API_KEY", "x-goog-api-key", "from-env"),
        ("google_ai", "GOOGLE_API_KEY", "x-goog-api-key", "from-env"),
    ],
)
async def test_api_key_from_the_environment(
    kind: str, variable: str, header: str, value: str, fake: FakeProvider, build: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, "from-env")
    await build(kind, api_key=None).embed(["x"])
    assert fake.embedding_requests[0].headers[header] == value


async def test_openai_compatible_server_needs_no_key(fake: FakeProvider, build: Build) -> None:
    assert len(await build("openai", api_key=None, model="bge-small").embed(["x"])) == 1


async def test_ollama_sends_an_optional_bearer_key(fake: FakeProvider, build: Build) -> None:
    await build("ollama").embed(["x"])
    await build("ollama", api_key=KEY).embed(["x"])
    without, with_key = fake.embedding_requests
    assert "authorization" not in without.headers
    assert with_key.headers["authorization"] == f"Bearer {KEY}"
    assert with_key.body == {"model": "nomic-embed-text", "input": ["x"]}


def test_misconfiguration_is_reported_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EmbeddingError, match="azure_endpoint or set AZURE_OPENAI_ENDPOINT"):
        create_embedding_provider("azure_openai", "text-embedding-3-small", DIM, api_key=KEY)
    with pytest.raises(EmbeddingError, match="base_url must be an http"):
        create_embedding_provider("ollama", "nomic-embed-text", DIM, base_url="localhost:11434")
    with pytest.raises(EmbeddingError, match="1536-dimensional vectors only"):
        create_embedding_provider("openai", "text-embedding-ada-002", DIM, api_key=KEY)
    with pytest.raises(EmbeddingError, match="dim must be"):
        create_embedding_provider("openai", "text-embedding-3-small", 0, api_key=KEY)
    with pytest.raises(EmbeddingError, match="max_retries must be"):
        create_embedding_provider("ollama", "nomic-embed-text", DIM, max_retries=-1)
    with pytest.raises(EmbeddingError, match="invalid options for embedding provider 'openai'"):
        create_embedding_provider("openai", "text-embedding-3-small", DIM, api_key=KEY, azure_deployment="d")
    with pytest.raises(EmbeddingError, match="unknown embedding provider"):
        create_embedding_provider("cohere", "embed-v3", DIM)

    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://example.openai.azure.com/")
    monkeypatch.setenv("AZURE_API_KEY", KEY)
    azure = create_embedding_provider("azure", "text-embedding-3-small", DIM, base_url=None, timeout=None)
    assert isinstance(azure, AzureOpenAIEmbeddingProvider)
    assert (azure.provider, azure.endpoint, azure.api_version) == (
        "azure_openai",
        "https://example.openai.azure.com",
        "2024-10-21",
    )
    assert azure.timeout == 30.0  # None counts as not given
    assert KEY not in repr(azure)
    assert set(KINDS) | {"azure", "local"} == set(supported_kinds())


async def test_dimensions_are_sent_only_for_a_non_native_size(build: Build) -> None:
    async with FakeProvider(embedding_dim=1536) as fake:
        native = build("openai", root=fake.url, dim=1536)
        shortened = build("openai", root=fake.url, dim=256)
        compatible = build("openai", root=fake.url, dim=256, model="bge-m3", send_dimensions=True)
        for provider in (native, shortened, compatible):
            assert len((await provider.embed(["x"]))[0]) == provider.dim
        bodies = [r.body for r in fake.embedding_requests]

    assert "dimensions" not in bodies[0]
    assert bodies[1]["dimensions"] == 256 and bodies[2]["dimensions"] == 256
    assert {b["encoding_format"] for b in bodies} == {"float"}


# -- client lifecycle -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_one_client_per_provider_reused_and_closed(
    kind: str, fake: FakeProvider, build: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, name = {
        "openai": (openai, "AsyncOpenAI"),
        "azure_openai": (openai, "AsyncAzureOpenAI"),
        "google_ai": (genai, "Client"),
        "ollama": (httpx, "AsyncClient"),
    }[kind]
    original = getattr(owner, name)
    created: list[object] = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        created.append(client := original(*args, **kwargs))
        return client

    monkeypatch.setattr(owner, name, counting)
    provider = build(kind)
    client = provider.client
    for _ in range(3):
        await provider.embed(TEXTS[:2])

    assert len(created) == 1 and provider.client is client
    assert len(fake.embedding_requests) == 3

    await provider.aclose()
    await provider.aclose()  # idempotent
    assert provider.closed
    if kind in ("openai", "azure_openai"):
        assert client.is_closed()
    elif kind == "ollama":
        assert client.is_closed
    with pytest.raises(EmbeddingError, match="closed"):
        await provider.embed(["x"])


def test_sdks_are_imported_only_when_a_provider_is_built() -> None:
    code = (
        "import sys\n"
        "import mirix.embeddings as e\n"
        "assert not {'openai', 'google.genai', 'anthropic'} & set(sys.modules), 'an SDK was imported'\n"
        "sys.modules['openai'] = None\n"  # None in sys.modules makes the import fail: SDKs 'not installed'
        "sys.modules['google.genai'] = None\n"
        "cases = [('openai', 'openai', {}), ('azure', 'openai', {'azure_endpoint': 'https://x.test'}),\n"
        "         ('google_ai', 'google', {})]\n"
        "for kind, extra, options in cases:\n"
        "    try:\n"
        "        e.create_embedding_provider(kind, 'm', 8, api_key='k', **options)\n"
        "    except e.EmbeddingError as exc:\n"
        "        assert f'mirix-server[{extra}]' in str(exc), exc\n"
        "    else:\n"
        "        raise AssertionError(kind)\n"
        "e.create_embedding_provider('ollama', 'm', 8)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
