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

    cache = VectorCache(max_bytes=384 * 4 + 100)  # room for one 384-dimensional vector
    for user in ("u1", "u2"):
        await server.memories.insert_many(tenant.actor, SEMANTIC, user, [{"name": f"{user} thing", "summary": "x"}])
    async with server.sessions() as session:
        for user in ("u1", "u2"):
            key = VectorKey(tenant.org_id, user, "semantic", "name", server.embedder.model)
            query = (await server.embedder.embed(["thing"]))[0]
            assert [memory_id for memory_id, _ in await cache.nearest(session, key, query, 5)]
    assert [key.user_id for key in cache._entries] == ["u2"]  # the first user's matrix made room
