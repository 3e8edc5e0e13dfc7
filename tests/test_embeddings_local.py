"""The local embedding provider on the real all-MiniLM-L6-v2 int8 model, its cache, factory and retry."""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import time

import pytest

from mirix.embeddings import (
    CachedEmbedder,
    EmbeddingError,
    EmbeddingProvider,
    LocalMiniLMProvider,
    QueryEmbeddingCache,
    create_embedding_provider,
    get_local_provider,
    model_files,
    retry,
)


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


@pytest.fixture
def provider() -> LocalMiniLMProvider:
    # The shared instance: the model loads once for the whole module, whichever test runs first.
    return get_local_provider()


def test_import_loads_no_model() -> None:
    code = (
        "import sys, mirix.embeddings as e\n"
        "p = e.get_local_provider()\n"
        "assert not p.loaded\n"
        "assert 'onnxruntime' not in sys.modules, 'onnxruntime imported at import time'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_model_files_are_found_in_packages() -> None:
    onnx_file, tokenizer_file = model_files()
    assert onnx_file.name == "model.onnx" and onnx_file.is_file()
    assert tokenizer_file.name == "all-MiniLM-L6-v2.tokenizer.json.gz" and tokenizer_file.is_file()


async def test_dimension_and_unit_norm(provider: LocalMiniLMProvider) -> None:
    assert isinstance(provider, EmbeddingProvider)
    assert (provider.provider, provider.model, provider.dim) == ("local", "all-MiniLM-L6-v2", 384)
    vectors = await provider.embed(["hello world", "The cat sat on the mat", ""])
    assert len(vectors) == 3
    for vector in vectors:
        assert len(vector) == 384
        assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, abs_tol=1e-5)


async def test_semantic_sanity(provider: LocalMiniLMProvider) -> None:
    cat, rug, revenue = await provider.embed(
        ["The cat sat on the mat", "A cat was sitting on a rug", "Quarterly revenue grew 5%"]
    )
    print(f"\ncat~rug {cosine(cat, rug):.3f}  cat~revenue {cosine(cat, revenue):.3f}")
    assert cosine(cat, rug) > cosine(cat, revenue) + 0.3


async def test_batch_matches_one_by_one_and_keeps_order(provider: LocalMiniLMProvider) -> None:
    texts = [
        "A fairly long sentence about the migration of birds across the Atlantic in late autumn.",
        "hi",
        "Short one.",
        "memory " * 40,
        "The quick brown fox jumps over the lazy dog",
        "x",
    ]
    batch = await provider.embed(texts)
    singles = [(await provider.embed([text]))[0] for text in texts]
    for together, alone in zip(batch, singles, strict=True):
        assert max(abs(a - b) for a, b in zip(together, alone, strict=True)) < 1e-5
    # Distinct texts give distinct vectors, so a permutation would have been caught above too.
    assert cosine(batch[1], batch[5]) < 0.99


async def test_sub_batches_keep_order() -> None:
    small = LocalMiniLMProvider(batch_size=3)
    try:
        texts = [f"{'word ' * (i % 5)}sentence number {i}" for i in range(10)]
        split = await small.embed(texts)
        whole = await get_local_provider().embed(texts)
        for a, b in zip(split, whole, strict=True):
            assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-5
    finally:
        await small.aclose()


async def test_empty_input(provider: LocalMiniLMProvider) -> None:
    assert await provider.embed([]) == []


async def test_long_text_is_truncated(provider: LocalMiniLMProvider) -> None:
    long_text = "Memories of a long summer by the sea. " * 2000
    (long_vector,) = await provider.embed([long_text])
    assert len(long_vector) == 384
    # Past 256 tokens nothing more is read: a longer text embeds the same.
    (longer_vector,) = await provider.embed([long_text + " Completely different ending about tax law." * 50])
    assert max(abs(a - b) for a, b in zip(long_vector, longer_vector, strict=True)) < 1e-6


async def test_single_string_is_rejected(provider: LocalMiniLMProvider) -> None:
    with pytest.raises(TypeError):
        await provider.embed("not a list")  # type: ignore[arg-type]


async def test_concurrent_calls(provider: LocalMiniLMProvider) -> None:
    texts = [[f"task {t} sentence {i} about {['cats', 'money', 'rain'][i % 3]}" for i in range(7)] for t in range(6)]
    expected = [await provider.embed(batch) for batch in texts]
    results = await asyncio.gather(*(provider.embed(batch) for batch in texts))
    for got, want in zip(results, expected, strict=True):
        for a, b in zip(got, want, strict=True):
            assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-5


async def test_event_loop_stays_responsive(provider: LocalMiniLMProvider) -> None:
    await provider.embed(["warm up"])
    ticks = 0
    worst_gap = 0.0

    async def ticker() -> None:
        nonlocal ticks, worst_gap
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            worst_gap = max(worst_gap, now - last)
            last = now
            ticks += 1

    texts = [
        f"Document {i}: " + "notes about the weekly planning meeting and its outcomes. " * (1 + i % 8)
        for i in range(200)
    ]
    task = asyncio.create_task(ticker())
    started = time.perf_counter()
    try:
        vectors = await provider.embed(texts)
    finally:
        task.cancel()
    elapsed = time.perf_counter() - started
    print(f"\n200 texts in {elapsed:.2f}s; ticker ticked {ticks}x, worst gap {worst_gap * 1000:.0f} ms")
    assert len(vectors) == 200
    assert ticks >= 5
    assert ticks >= elapsed / 0.01 * 0.3  # most ticks happened: the loop was not blocked


async def test_throughput_100_short_sentences(provider: LocalMiniLMProvider) -> None:
    sentences = [f"This is short sentence number {i} about topic {i % 7}." for i in range(100)]
    await provider.embed(sentences)
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        await provider.embed(sentences)
        timings.append(time.perf_counter() - started)
    print(
        f"\n100 short sentences: best {min(timings):.3f}s, runs {', '.join(f'{t:.3f}' for t in timings)} "
        f"({provider.intra_op_threads} intra-op threads)"
    )


async def test_closed_provider_raises() -> None:
    own = LocalMiniLMProvider()
    await own.aclose()
    with pytest.raises(EmbeddingError, match="closed"):
        await own.embed(["x"])
    # The shared factory replaces a closed shared instance instead of handing it out.
    shared = get_local_provider(batch_size=7)
    await shared.aclose()
    assert get_local_provider(batch_size=7) is not shared


async def test_close_during_a_batch_fails_cleanly() -> None:
    own = LocalMiniLMProvider(batch_size=4)
    await own.load()
    task = asyncio.create_task(own.embed([f"sentence {i}" for i in range(400)]))
    await asyncio.sleep(0.05)
    await own.aclose()
    with pytest.raises(EmbeddingError, match="closed"):
        await task


async def test_concurrent_requests_share_runs(provider: LocalMiniLMProvider, monkeypatch) -> None:
    """Requests waiting for the worker thread are embedded together, and each still gets exactly
    its own vectors back, in its own order."""
    runs: list[int] = []
    real = provider._embed_sync

    def counting(texts: list[str]) -> list[list[float]]:
        runs.append(len(texts))
        return real(texts)

    monkeypatch.setattr(provider, "_embed_sync", counting)
    requests = [[f"job {i} wrote a note about topic {i}", f"a longer second sentence number {i} " * (i % 3 + 1)]
                for i in range(12)]  # fmt: skip
    results = await asyncio.gather(*(provider.embed(texts) for texts in requests))
    assert len(runs) < len(requests) and sum(runs) == 24  # merged, nothing lost or repeated
    for texts, vectors in zip(requests, results, strict=True):
        alone = real(texts)
        assert all(abs(a - b) < 1e-4 for v, w in zip(vectors, alone, strict=True) for a, b in zip(v, w, strict=True))


async def test_query_cache_hits_and_misses(provider: LocalMiniLMProvider) -> None:
    embedder = CachedEmbedder(provider, QueryEmbeddingCache(max_entries=2))
    first = await embedder.embed_query("where did I park")
    assert (embedder.cache.hits, embedder.cache.misses) == (0, 1)
    again = await embedder.embed_query("where did I park")
    assert again == first
    assert (embedder.cache.hits, embedder.cache.misses) == (1, 1)
    again.append(0.0)  # a caller's mutation does not reach the cache
    assert len(await embedder.embed_query("where did I park")) == 384

    await embedder.embed_query("b")
    await embedder.embed_query("c")  # evicts the least recently used: "where did I park"
    assert len(embedder.cache) == 2
    hits, misses = embedder.cache.hits, embedder.cache.misses
    await embedder.embed_query("where did I park")
    assert (embedder.cache.hits, embedder.cache.misses) == (hits, misses + 1)

    await embedder.embed(["documents", "bypass the cache"])
    assert (embedder.cache.hits, embedder.cache.misses) == (hits, misses + 1)
    assert embedder.dim == 384 and embedder.model == "all-MiniLM-L6-v2"


async def test_concurrent_queries_for_one_text_embed_it_once() -> None:
    class Counting:
        provider, model, dim = "counting", "m", 3
        calls = 0

        async def embed(self, texts: list[str]) -> list[list[float]]:
            Counting.calls += 1
            await asyncio.sleep(0.05)
            if texts == ["boom"]:
                raise EmbeddingError("provider down")
            return [[1.0, 0.0, 0.0] for _ in texts]

    embedder = CachedEmbedder(Counting())
    results = await asyncio.gather(*(embedder.embed_query("same question") for _ in range(5)))
    assert Counting.calls == 1 and all(r == [1.0, 0.0, 0.0] for r in results)
    results[0].append(9.0)  # callers get their own lists
    assert results[1] == [1.0, 0.0, 0.0]

    outcomes = await asyncio.gather(*(embedder.embed_query("boom") for _ in range(3)), return_exceptions=True)
    assert Counting.calls == 2 and all(isinstance(o, EmbeddingError) for o in outcomes)
    assert await embedder.embed_query("same question") == [1.0, 0.0, 0.0]  # from the cache
    assert Counting.calls == 2 and not embedder._in_flight


def test_cache_keys_separate_models() -> None:
    cache = QueryEmbeddingCache()
    cache.put(("local", "a", "text"), [1.0])
    assert cache.get(("local", "b", "text")) is None
    assert cache.get(("openai", "a", "text")) is None
    assert cache.get(("local", "a", "text")) == [1.0]


def test_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert create_embedding_provider("local", "all-MiniLM-L6-v2", 384) is get_local_provider()
    own = create_embedding_provider("local", "all-MiniLM-L6-v2", 384, shared=False)
    assert isinstance(own, LocalMiniLMProvider) and own is not get_local_provider()
    with pytest.raises(EmbeddingError, match="unknown embedding provider 'nope'"):
        create_embedding_provider("nope", "m", 3)
    with pytest.raises(EmbeddingError, match="needs an API key"):
        create_embedding_provider("openai", "text-embedding-3-small", 1536)
    with pytest.raises(EmbeddingError, match="384"):
        create_embedding_provider("local", "all-MiniLM-L6-v2", 768)
    with pytest.raises(EmbeddingError, match="only"):
        create_embedding_provider("local", "bge-small", 384)
    with pytest.raises(EmbeddingError, match="invalid options"):
        create_embedding_provider("local", "all-MiniLM-L6-v2", 384, api_key="x")


async def test_retry_only_transient_errors() -> None:
    delays: list[float] = []

    async def fake_sleep(delay: float) -> None:
        delays.append(delay)

    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("try again")
        return "ok"

    result = await retry(flaky, transient=(ConnectionError,), attempts=5, base_delay=1, max_delay=1.5, sleep=fake_sleep)
    assert result == "ok" and calls == 3
    assert len(delays) == 2 and all(0 <= d <= 1.5 for d in delays)

    async def broken() -> None:
        raise ValueError("bad config")

    delays.clear()
    with pytest.raises(ValueError):
        await retry(broken, transient=(ConnectionError,), sleep=fake_sleep)
    assert delays == []

    calls = 0

    async def always_down() -> None:
        nonlocal calls
        calls += 1
        raise TimeoutError

    with pytest.raises(TimeoutError):
        await retry(always_down, transient=lambda exc: isinstance(exc, TimeoutError), attempts=3, sleep=fake_sleep)
    assert calls == 3


def test_serving_app_loads_the_model_and_llm_sdk_before_the_first_request(tmp_path) -> None:
    """Both take a good part of a second holding the GIL; paid under the first memory job they
    stalled every request in flight (checked in a fresh interpreter, where nothing is loaded yet)."""
    code = (
        "import asyncio, sys\n"
        "from mirix.api.app import create_app\n"
        "from mirix.embeddings import get_local_provider\n"
        "from mirix.settings import Settings\n"
        f"app = create_app(Settings(data_dir={str(tmp_path)!r}, bootstrap=False, _env_file=None))\n"
        "async def main():\n"
        "    assert 'openai' not in sys.modules and not get_local_provider().loaded\n"
        "    async with app.router.lifespan_context(app):\n"
        "        assert 'openai' in sys.modules and get_local_provider().loaded\n"
        "asyncio.run(main())\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "MIRIX_LLM_ENDPOINT_TYPE": "openai"})
