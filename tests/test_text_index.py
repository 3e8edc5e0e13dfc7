"""The SQLite in-process BM25 index: FTS5's scoring, and never stale — after inserts, updates,
soft and hard deletes, and writes by another process."""

from __future__ import annotations

import math
import random

import pytest

from mirix.search.text import stems
from mirix.search.text_index import K1, B, TextIndex, TextKey
from mirix.search.vector_cache import VectorCache, VectorKey
from mirix.server.server import AsyncServer
from mirix.services.memory.kinds import EPISODIC, SEMANTIC

pytestmark = pytest.mark.sqlite_only


def reference_bm25(docs: dict[str, list[str]], weights: list[float], query: list[str]) -> dict[str, float]:
    """Okapi BM25 as FTS5 computes it: weighted term frequency over the fields, document length in
    words over all fields, idf floored at 1e-6."""
    tokens = {memory_id: [stems(text) for text in fields] for memory_id, fields in docs.items()}
    lengths = {memory_id: sum(len(words) for words in fields) for memory_id, fields in tokens.items()}
    average = sum(lengths.values()) / len(lengths)
    scores: dict[str, float] = {}
    for term in query:
        containing = [m for m, fields in tokens.items() if any(term in words for words in fields)]
        idf = max(math.log((len(docs) - len(containing) + 0.5) / (len(containing) + 0.5)), 1e-6)
        for memory_id in containing:
            tf = sum(w * words.count(term) for w, words in zip(weights, tokens[memory_id], strict=True))
            if tf:
                norm = K1 * (1 - B + B * lengths[memory_id] / average)
                scores[memory_id] = scores.get(memory_id, 0.0) + idf * tf * (K1 + 1) / (tf + norm)
    return scores


async def top(server, tenant, index: TextIndex, query: str, k: int = 50, fields=EPISODIC.text_fields):
    async with server.sessions() as session:
        key = TextKey(tenant.org_id, "alice", "episodic")
        return await index.top(session, key, EPISODIC, stems(query), fields, k)


def episode(rng: random.Random, words: list[str]) -> dict[str, str]:
    def text(n: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n))

    return {"summary": text(6), "details": text(14), "actor": rng.choice(["Alice", "Bob"]), "event_type": "chat"}


async def test_scores_are_okapi_bm25_with_field_weights(server, tenant):
    rng = random.Random(7)
    words = "garden hiking coffee museum painting guitar recipe marathon bakery river violin".split()
    items = [episode(rng, words) for _ in range(60)]
    rows = await server.memories.insert_many(tenant.actor, EPISODIC, "alice", items)
    docs = {row.id: [item[f] for f in EPISODIC.text_fields] for row, item in zip(rows, items, strict=True)}
    index = TextIndex()
    for query in ("garden coffee", "violin", "hiking museum river", "alice marathon"):
        expected = reference_bm25(docs, list(EPISODIC.text_weights), stems(query))
        found = dict(await top(server, tenant, index, query, k=100))
        assert found.keys() == expected.keys()
        for memory_id, score in expected.items():
            assert found[memory_id] == pytest.approx(score, rel=1e-4)
    # A field restriction counts that field's occurrences only.
    summary_only = [1.0, 0.0, 0.0, 0.0]
    expected = reference_bm25(docs, summary_only, stems("garden"))
    found = dict(await top(server, tenant, index, "garden", k=100, fields=("summary",)))
    assert found.keys() == expected.keys()
    assert all(found[m] == pytest.approx(s, rel=1e-4) for m, s in expected.items())


async def test_appends_merge_into_the_same_index_a_fresh_build_gives(server, tenant):
    rng = random.Random(11)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda".split()
    await server.memories.insert_many(tenant.actor, EPISODIC, "alice", [episode(rng, words) for _ in range(20)])
    incremental = TextIndex()
    await top(server, tenant, incremental, "alpha")
    for _ in range(30):  # one memory at a time: deltas, then merges into the main segment
        await server.memories.insert_many(tenant.actor, EPISODIC, "alice", [episode(rng, words)])
        await top(server, tenant, incremental, "alpha")
    assert incremental.loads == 31
    for query in ("alpha beta", "kappa", "theta lambda iota"):
        fresh = await top(server, tenant, TextIndex(), query)
        again = await top(server, tenant, incremental, query)
        assert [m for m, _ in again] == [m for m, _ in fresh]
        assert [s for _, s in again] == pytest.approx([s for _, s in fresh], rel=1e-5)


async def test_updates_and_deletions_are_seen(server, tenant):
    index = TextIndex()
    a, b, c = await server.memories.insert_many(
        tenant.actor,
        EPISODIC,
        "alice",
        [{"summary": "walked the dog"}, {"summary": "baked sourdough bread"}, {"summary": "painted a fence"}],
    )

    async def ids(query: str) -> list[str]:
        return [memory_id for memory_id, _ in await top(server, tenant, index, query)]

    assert await ids("bread") == [b.id]
    await server.memories.update(tenant.actor, EPISODIC, b.id, {"summary": "baked a cherry pie"})
    assert await ids("bread") == [] and await ids("cherry pie") == [b.id]
    await server.memories.delete(tenant.actor, EPISODIC, a.id)  # soft delete
    assert await ids("dog") == []
    # Hard-deleting the newest row would leave the highest fts_rowid as it was: the deletion
    # record moves the marker instead.
    async with server.sessions.begin() as session:
        await server.memories.purge(session, [EPISODIC], lambda model: [model.id == c.id])
    assert await ids("fence") == []
    (d,) = await server.memories.insert_many(tenant.actor, EPISODIC, "alice", [{"summary": "painted a wall"}])
    assert await ids("painted") == [d.id]
    async with server.sessions() as session:
        snapshot = await index.current(session, TextKey(tenant.org_id, "alice", "episodic"), EPISODIC)
    assert snapshot is not None
    assert snapshot.visible([a.id, b.id, c.id, d.id], ["default"]) == {b.id, d.id}
    assert snapshot.visible([b.id, d.id], ["elsewhere"]) == set()


async def test_writes_by_another_process_are_seen(server, tenant, settings, http):
    await server.memories.insert_many(tenant.actor, EPISODIC, "alice", [{"summary": "tea in the garden"}])

    async def summaries(query: str) -> list[str]:
        params = {"user_id": "alice", "query": query, "memory_type": "episodic", "search_method": "bm25"}
        body = (await http.get("/memory/search", params=params, headers=tenant.headers)).json()
        return [item["summary"] for item in body["results"]]

    assert await summaries("garden") == ["tea in the garden"]
    other = await AsyncServer.start(settings)
    try:
        (row,) = await other.memories.insert_many(tenant.actor, EPISODIC, "alice", [{"summary": "a garden party"}])
        assert sorted(await summaries("garden")) == ["a garden party", "tea in the garden"]
        await other.memories.update(tenant.actor, EPISODIC, row.id, {"summary": "a rooftop party"})
        assert await summaries("garden") == ["tea in the garden"]
    finally:
        await other.close()


async def test_replacing_the_newest_vector_is_seen(server, tenant):
    """SQLite reuses the id of a deleted newest row unless the table is AUTOINCREMENT; an update
    deletes the memory's vectors and inserts new ones, which then looked like no change."""
    cache = VectorCache()
    key = VectorKey(tenant.org_id, "alice", "semantic", server.embedder.model)
    dog, cat = await server.memories.insert_many(
        tenant.actor, SEMANTIC, "alice", [{"name": "Rex", "summary": "a dog"}, {"name": "Tom", "summary": "a cat"}]
    )

    async def nearest(text: str) -> dict[str, float]:
        query = (await server.embedder.embed([text]))[0]
        async with server.sessions() as session:
            return dict(await cache.nearest(session, key, query, 10, "summary"))

    before = await nearest("a yellow canary bird")
    await server.memories.update(tenant.actor, SEMANTIC, cat.id, {"summary": "a yellow canary bird"})
    after = await nearest("a yellow canary bird")
    assert after[cat.id] == pytest.approx(1.0, abs=1e-4) and after[cat.id] > before[cat.id]
