"""Raw memory: create, read, update (append/merge), delete, filtered keyset search, cleanup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import update

from mirix.db.models import RawMemory
from tests.support import Tenant, create_tenant


async def create(http, tenant, context, user_id="alice", **extra):
    response = await http.post(
        "/memory/raw", params={"user_id": user_id}, json={"context": context, **extra}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    return response.json()["memory"]


async def test_raw_memory_lifecycle(http: httpx.AsyncClient, tenant: Tenant):
    memory = await create(http, tenant, "Working on ticket 42", filter_tags={"task": "t42", "scope": "spoofed"})
    assert memory["filter_tags"] == {"task": "t42", "scope": "default"}, "the scope is the client's, not the body's"
    got = (await http.get(f"/memory/raw/{memory['id']}", headers=tenant.headers)).json()["memory"]
    assert got["context"] == "Working on ticket 42" and got["last_modify"]["operation"] == "updated"
    assert (
        await http.get(f"/memory/raw/{memory['id']}", params={"user_id": "bob"}, headers=tenant.headers)
    ).status_code == 404

    appended = await http.patch(
        f"/memory/raw/{memory['id']}",
        headers=tenant.headers,
        json={
            "context": "Found the bug",
            "context_update_type": "append",
            "filter_tags": {"status": "open"},
            "tags_update_type": "merge",
        },
    )
    assert appended.status_code == 200, appended.text
    assert appended.json()["memory"]["context"] == "Working on ticket 42\n\nFound the bug"
    assert appended.json()["memory"]["filter_tags"] == {"task": "t42", "status": "open", "scope": "default"}
    replaced = await http.patch(
        f"/memory/raw/{memory['id']}",
        headers=tenant.headers,
        json={"context": "Closed", "filter_tags": {"status": "done"}},
    )
    assert replaced.json()["memory"]["context"] == "Closed"
    assert replaced.json()["memory"]["filter_tags"] == {"status": "done", "scope": "default"}
    scope_change = await http.patch(
        f"/memory/raw/{memory['id']}", headers=tenant.headers, json={"filter_tags": {"scope": "other"}}
    )
    assert scope_change.status_code == 400

    deleted = await http.delete(f"/memory/raw/{memory['id']}", headers=tenant.headers)
    assert deleted.json() == {"success": True, "message": f"Raw memory {memory['id']} deleted"}
    assert (await http.get(f"/memory/raw/{memory['id']}", headers=tenant.headers)).status_code == 404


async def test_raw_memory_confinement(http, server, tenant, other_tenant):
    memory = await create(http, tenant, "private context")
    reader = await create_tenant(server, "acme", client="reader", write_scope=None, read_scopes=["default"])
    assert (await http.get(f"/memory/raw/{memory['id']}", headers=reader.headers)).status_code == 200
    assert (
        await http.patch(f"/memory/raw/{memory['id']}", json={"context": "x"}, headers=reader.headers)
    ).status_code == 404
    assert (await http.delete(f"/memory/raw/{memory['id']}", headers=reader.headers)).status_code == 404
    assert (
        await http.post("/memory/raw", params={"user_id": "a"}, json={"context": "x"}, headers=reader.headers)
    ).status_code == 403
    for method in ("GET", "DELETE"):
        response = await http.request(method, f"/memory/raw/{memory['id']}", headers=other_tenant.headers)
        assert response.status_code == 404
    assert (await http.post("/memory/search_raw", json={}, headers=other_tenant.headers)).json()["items"] == []
    blank = await http.post("/memory/raw", params={"user_id": "a"}, json={"context": "   "}, headers=tenant.headers)
    assert blank.status_code == 422


async def test_search_raw_pages_with_a_cursor(http, tenant):
    base = datetime(2024, 1, 1, tzinfo=UTC)
    ids = []
    for i in range(7):
        memory = await create(
            http,
            tenant,
            f"note {i}",
            occurred_at=(base + timedelta(days=i)).isoformat(),
            filter_tags={"n": i, "even": i % 2 == 0},
        )
        ids.append(memory["id"])
    seen, cursor = [], None
    while True:
        body = {"sort": "-occurred_at", "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await http.post("/memory/search_raw", json=body, headers=tenant.headers)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    evens = (
        await http.post(
            "/memory/search_raw", headers=tenant.headers, json={"filter_tags": {"even": True}, "sort": "occurred_at"}
        )
    ).json()
    assert [item["id"] for item in evens["items"]] == ids[0::2]
    window = (
        await http.post(
            "/memory/search_raw",
            headers=tenant.headers,
            json={"time_range": {"occurred_at_gte": "2024-01-02T00:00:00Z", "occurred_at_lte": "2024-01-03T00:00:00"}},
        )
    ).json()
    assert {item["id"] for item in window["items"]} == {ids[1], ids[2]}
    inverted = await http.post(
        "/memory/search_raw",
        headers=tenant.headers,
        json={"time_range": {"created_at_gte": "2024-02-01T00:00:00Z", "created_at_lte": "2024-01-01T00:00:00Z"}},
    )
    assert inverted.status_code == 422
    for bad in ({"sort": "context"}, {"cursor": "!!!"}, {"limit": 0}, {"filter_tags": {"n": {"$bad": 1}}}):
        response = await http.post("/memory/search_raw", json=bad, headers=tenant.headers)
        assert response.status_code in (400, 422), bad


async def test_cleanup_removes_only_old_rows_of_the_callers_org(http, server, tenant, other_tenant):
    old = await create(http, tenant, "old note")
    fresh = await create(http, tenant, "fresh note")
    foreign_old = await create(http, other_tenant, "someone else's old note")
    async with server.sessions.begin() as session:
        await session.execute(
            update(RawMemory)
            .where(RawMemory.id.in_([old["id"], foreign_old["id"]]))
            .values(updated_at=datetime.now(UTC) - timedelta(days=30))
        )
    result = (await http.post("/memory/raw/cleanup", params={"days_threshold": 14}, headers=tenant.headers)).json()
    assert result["deleted_count"] == 1 and result["days_threshold"] == 14
    assert (await http.get(f"/memory/raw/{old['id']}", headers=tenant.headers)).status_code == 404
    assert (await http.get(f"/memory/raw/{fresh['id']}", headers=tenant.headers)).status_code == 200
    assert (await http.get(f"/memory/raw/{foreign_old['id']}", headers=other_tenant.headers)).status_code == 200
    assert (
        await http.post("/memory/raw/cleanup", params={"days_threshold": 0}, headers=tenant.headers)
    ).status_code == 422
