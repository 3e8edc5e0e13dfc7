"""Erasing memories: per user, per client, and what soft-deleting a user hides."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from mirix.db.models import MemoryEmbedding, MemoryHistory
from tests.support import create_tenant


async def _import(http, tenant, user_id, text):
    items = [
        {"memory_type": "episodic", "user_id": user_id, "summary": text, "details": text},
        {"memory_type": "semantic", "user_id": user_id, "name": text, "summary": text},
    ]
    response = await http.post("/memory/import", json={"items": items}, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()["ids"]


async def _count(http, tenant, user_id, query):
    body = (
        await http.get(
            "/memory/search",
            params={"user_id": user_id, "query": query, "search_method": "bm25"},
            headers=tenant.headers,
        )
    ).json()
    return body["count"]


async def test_user_memories_erased_by_client_only_in_its_scope(http: httpx.AsyncClient, server, tenant, admin_headers):
    shared = await create_tenant(server, "acme", client="both", write_scope="team", read_scopes=["team", "default"])
    await _import(http, tenant, "alice", "violin lessons")
    await _import(http, shared, "alice", "violin concert")
    response = await http.delete("/users/alice/memories", headers=tenant.headers)
    assert response.json() == {
        "message": "All memories for user alice hard deleted successfully",
        "preserved": ["user"],
    }
    assert await _count(http, shared, "alice", "violin") == 2  # the team scope was not the caller's to erase
    assert (await http.get("/users/alice", headers=tenant.headers)).status_code == 200
    await http.delete("/users/alice/memories", headers=admin_headers)
    assert await _count(http, shared, "alice", "violin") == 0
    async with server.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(MemoryEmbedding)) == 0
        assert await session.scalar(select(func.count()).select_from(MemoryHistory)) == 0
    assert (await http.delete("/users/nobody/memories", headers=tenant.headers)).status_code == 404


async def test_client_memories_erased(http, server, tenant, other_tenant):
    other_client = await create_tenant(server, "acme", client="other-app")
    await _import(http, tenant, "bob", "chess club")
    await _import(http, other_client, "bob", "chess openings")
    response = await http.delete(f"/clients/{tenant.client_id}/memories", headers=tenant.headers)
    assert response.json()["preserved"] == ["client", "agents", "tools"]
    assert await _count(http, other_client, "bob", "chess") == 2
    assert await _count(http, tenant, "bob", "chess") == 2  # only other-app's memories are left (same scope)
    body = (
        await http.get(
            "/memory/search",
            params={"user_id": "bob", "query": "chess", "search_method": "bm25"},
            headers=tenant.headers,
        )
    ).json()
    assert all("openings" in item["summary"] for item in body["results"])
    assert (await http.delete(f"/clients/{tenant.client_id}/memories", headers=other_tenant.headers)).status_code == 404
    assert (await http.delete(f"/clients/{other_client.client_id}/memories", headers=tenant.headers)).status_code == 404


async def test_soft_deleted_user_memories_disappear(http, tenant):
    await _import(http, tenant, "carol", "sailing trip")
    assert await _count(http, tenant, "carol", "sailing") == 2
    await http.delete("/users/carol", headers=tenant.headers)
    assert await _count(http, tenant, "carol", "sailing") == 0
