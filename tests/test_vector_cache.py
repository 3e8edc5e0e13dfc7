"""The SQLite vector cache never serves stale vectors, also after writes by another process."""

from __future__ import annotations

import pytest

from mirix.search.vector_cache import VectorCache, VectorKey
from mirix.server.server import AsyncServer
from mirix.services.memory.kinds import SEMANTIC


@pytest.mark.sqlite_only
async def test_cache_sees_writes_from_another_server(http, server, tenant, settings):
    items = [{"memory_type": "semantic", "user_id": "alice", "name": "Rex", "summary": "Alice's dog Rex"}]
    await http.post("/memory/import", json={"items": items}, headers=tenant.headers)

    async def top_names(query: str) -> list[str]:
        body = (
            await http.get(
                "/memory/search",
                params={"user_id": "alice", "query": query, "memory_type": "semantic", "search_method": "embedding"},
                headers=tenant.headers,
            )
        ).json()
        return [item["name"] for item in body["results"]]

    assert await top_names("a pet dog") == ["Rex"]
    loads = server.vector_cache.loads
    assert await top_names("a pet dog") == ["Rex"] and server.vector_cache.loads == loads  # served from memory
    other = await AsyncServer.start(settings)  # another process writing to the same database file
    try:
        await other.memories.insert_many(
            tenant.actor, SEMANTIC, "alice", [{"name": "Tom", "summary": "Alice's cat Tom"}]
        )
    finally:
        await other.close()
    assert await top_names("a cat") == ["Tom", "Rex"]
    assert server.vector_cache.loads > loads


@pytest.mark.sqlite_only
async def test_cache_evicts_least_recently_used(server, tenant):

    per_vector = 384 * 4 + 384 + 3 * 4  # float32 row, int8 codes, scale/error/norm
    cache = VectorCache(max_bytes=2 * per_vector + 500)  # room for one user's two 384-dimensional vectors
    for user in ("u1", "u2"):
        await server.memories.insert_many(tenant.actor, SEMANTIC, user, [{"name": f"{user} thing", "summary": "x"}])
    async with server.sessions() as session:
        for user in ("u1", "u2"):
            key = VectorKey(tenant.org_id, user, "semantic", server.embedder.model)
            query = (await server.embedder.embed(["thing"]))[0]
            assert [memory_id for memory_id, _ in await cache.nearest(session, key, query, 5)]
    assert [key.user_id for key in cache._entries] == ["u2"]  # the first user's matrix made room


@pytest.mark.sqlite_only
async def test_new_vectors_are_appended_and_updates_replace_old_vectors(server, tenant):
    cache = VectorCache()
    key = VectorKey(tenant.org_id, "alice", "semantic", server.embedder.model)

    async def nearest(text: str) -> list[tuple[str, float]]:
        query = (await server.embedder.embed([text]))[0]
        async with server.sessions() as session:
            return await cache.nearest(session, key, query, 10, "summary")

    rex, tom = await server.memories.insert_many(
        tenant.actor, SEMANTIC, "alice", [{"name": "Rex", "summary": "a dog"}, {"name": "Tom", "summary": "a cat"}]
    )
    assert [memory_id for memory_id, _ in await nearest("a dog")][0] == rex.id
    entry = cache._entries[key]
    (bird,) = await server.memories.insert_many(
        tenant.actor, SEMANTIC, "alice", [{"name": "Tweety", "summary": "a yellow canary bird"}]
    )
    assert [memory_id for memory_id, _ in await nearest("a small bird")][0] == bird.id
    appended = cache._entries[key]
    assert appended.ids[: entry.size] == entry.ids and appended.size == 6  # read only the new rows (2 fields)
    assert appended.buffer is entry.buffer or appended.buffer.shape[0] >= 3

    await server.memories.update(tenant.actor, SEMANTIC, rex.id, {"summary": "a yellow canary bird"})
    found = await nearest("a small bird")
    assert sorted(memory_id for memory_id, _ in found) == sorted([rex.id, tom.id, bird.id])  # no stale duplicate
    similarity = dict(found)
    assert similarity[rex.id] == pytest.approx(similarity[bird.id], abs=1e-5)  # Rex's new vector, not the old one


@pytest.mark.sqlite_only
async def test_concurrent_searches_load_a_matrix_once(server, tenant):
    import asyncio

    cache = VectorCache()
    await server.memories.insert_many(
        tenant.actor, SEMANTIC, "alice", [{"name": f"thing {i}", "summary": f"thing number {i}"} for i in range(50)]
    )
    key = VectorKey(tenant.org_id, "alice", "semantic", server.embedder.model)
    query = (await server.embedder.embed(["thing"]))[0]

    async def one() -> list[tuple[str, float]]:
        async with server.sessions() as session:
            return await cache.nearest(session, key, query, 5)

    results = await asyncio.gather(*(one() for _ in range(8)))
    assert all(result == results[0] and len(result) == 5 for result in results)
    assert cache.loads == 1


def test_server_start_keeps_blas_to_one_thread(tmp_path):
    """Spinning BLAS threads doubled the CPU of each embedding search; numpy is imported lazily, so
    the limit must load it first to apply at all (checked in a fresh interpreter)."""
    import subprocess
    import sys

    script = (
        "from mirix.search.vector_cache import limit_blas_threads\n"
        "limit_blas_threads()\n"
        "from threadpoolctl import threadpool_info\n"
        "print(sorted({i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[1]"


@pytest.mark.sqlite_only
@pytest.mark.parametrize("field", [None, "summary"])
async def test_a_product_split_across_threads_ranks_exactly_like_one_product(server, tenant, monkeypatch, field):
    """Large matrices are multiplied in slices side by side; the slices must cover every row once."""
    from mirix.search import vector_cache

    items = [{"name": f"thing {i}", "summary": f"thing number {i} of {i % 7} kinds"} for i in range(60)]
    await server.memories.insert_many(tenant.actor, SEMANTIC, "alice", items)
    key = VectorKey(tenant.org_id, "alice", "semantic", server.embedder.model)
    query = (await server.embedder.embed(["thing number 3"]))[0]

    async def nearest() -> list[tuple[str, float]]:
        async with server.sessions() as session:
            return await VectorCache().nearest(session, key, query, 25, field)

    whole = await nearest()  # 120 rows (two fields each): one product on the event loop
    monkeypatch.setattr(vector_cache, "INLINE_ROWS", 0)
    monkeypatch.setattr(vector_cache, "SLICE_ROWS", 17)  # 120 rows -> 3 slices of 40 on "3 cores"
    monkeypatch.setattr(vector_cache, "_CORES", 3)
    monkeypatch.setattr(vector_cache, "RANK_INLINE_ROWS", 0)
    split = await nearest()
    assert len(whole) == 25
    assert [memory_id for memory_id, _ in split] == [memory_id for memory_id, _ in whole]
    assert [score for _, score in split] == pytest.approx([score for _, score in whole], abs=1e-6)


@pytest.mark.parametrize("rows", [1, 8191, 8192, 16384, 20000, 200001])
def test_slices_cover_every_row_once(rows):
    from mirix.search.vector_cache import _slices

    parts = _slices(rows, 8192, 2)
    assert parts[0].start == 0 and parts[-1].stop == rows
    assert all(a.stop == b.start for a, b in zip(parts, parts[1:], strict=False))
    assert len(parts) == (2 if rows >= 16384 else 1)


@pytest.mark.sqlite_only
def test_warm_up_imports_the_scan_kernels_before_the_first_search(tmp_path):
    """Importing them takes ~0.1 s with the GIL held: not in the middle of the first search."""
    import subprocess
    import sys

    script = (
        "import asyncio, sys\n"
        "from mirix.server.server import AsyncServer\n"
        "from mirix.settings import Settings\n"
        "async def main():\n"
        f"    server = await AsyncServer.start(Settings(data_dir={str(tmp_path)!r}, bootstrap=False, _env_file=None))\n"
        "    before = 'numkong' in sys.modules\n"
        "    await server.warm_up()\n"
        "    print(before, 'numkong' in sys.modules)\n"
        "    await server.close()\n"
        "asyncio.run(main())\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "False True"
