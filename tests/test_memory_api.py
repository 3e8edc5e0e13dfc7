"""Memory import, search (every method), filters, dates, edits with history, deletion — over HTTP."""

from __future__ import annotations

import httpx
import pytest

from tests.support import Tenant, create_tenant

ITEMS = [
    {
        "memory_type": "episodic",
        "user_id": "alice",
        "occurred_at": "2024-05-01T10:00:00Z",
        "actor": "user",
        "event_type": "activity",
        "summary": "Alice went to a pottery class",
        "details": "Alice spent Saturday morning at a ceramics studio throwing bowls on the wheel",
        "filter_tags": {"project": "hobby", "priority": 2},
    },
    {
        "memory_type": "episodic",
        "user_id": "alice",
        "occurred_at": "2024-06-15T18:30:00Z",
        "actor": "user",
        "event_type": "travel",
        "summary": "Alice flew to Lisbon",
        "details": "She took an evening flight to Lisbon for a conference about distributed databases",
        "filter_tags": {"project": "work", "priority": 5, "tags": ["conference", "travel"]},
    },
    {
        "memory_type": "semantic",
        "user_id": "alice",
        "name": "Mochi",
        "summary": "Mochi is Alice's cat",
        "details": "A grey British shorthair kitten adopted in 2023",
        "source": "conversation",
    },
    {
        "memory_type": "procedural",
        "user_id": "alice",
        "entry_type": "workflow",
        "summary": "How Alice deploys the blog",
        "steps": ["run the static site build", "upload to the bucket"],
    },
    {
        "memory_type": "resource",
        "user_id": "alice",
        "title": "Quarterly report",
        "summary": "Revenue grew five percent",
        "resource_type": "pdf_text",
        "content": "Q3 revenue grew by 5%",
    },
    {
        "memory_type": "knowledge_vault",
        "user_id": "alice",
        "entry_type": "credential",
        "source": "user",
        "sensitivity": "high",
        "secret_value": "hunter2",
        "caption": "Alice's router password",
    },
]


@pytest.fixture
async def imported(http: httpx.AsyncClient, tenant: Tenant) -> list[str]:
    response = await http.post("/memory/import", json={"items": ITEMS}, headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert response.json()["count"] == len(ITEMS)
    return response.json()["ids"]


async def search(http, tenant, **params):
    response = await http.get("/memory/search", params={"user_id": "alice", **params}, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("method", ["bm25", "embedding", "hybrid", "string_match", "fuzzy_match"])
async def test_every_method_finds_the_pottery_class(http, tenant, imported, method):
    query = {"string_match": "pottery", "fuzzy_match": "potery clas"}.get(method, "pottery class")
    body = await search(http, tenant, query=query, memory_type="episodic", search_method=method)
    assert body["results"], body
    assert body["results"][0]["id"] == imported[0]
    assert body["results"][0]["memory_type"] == "episodic"
    assert {"timestamp", "event_type", "actor", "summary", "details", "score"} <= set(body["results"][0])


async def test_embedding_search_understands_meaning(http, tenant, imported):
    body = await search(
        http, tenant, query="feline pet", memory_type="semantic", search_method="embedding", search_field="details"
    )
    assert body["results"][0]["name"] == "Mochi"


async def test_search_all_types_ranks_across_types(http, tenant, imported):
    body = await search(http, tenant, query="Alice cat Mochi", search_method="hybrid")
    kinds = [item["memory_type"] for item in body["results"]]
    assert kinds[0] == "semantic"
    scores = [item["score"] for item in body["results"]]
    assert scores == sorted(scores, reverse=True)


async def test_empty_query_lists_recent(http, tenant, imported):
    body = await search(http, tenant, query="", memory_type="episodic")
    assert [item["id"] for item in body["results"]] == [imported[1], imported[0]]


async def test_filters_and_dates(http, tenant, imported):
    body = await search(http, tenant, query="", memory_type="episodic", filter_tags='{"project": "work"}')
    assert [item["id"] for item in body["results"]] == [imported[1]]
    body = await search(
        http,
        tenant,
        query="",
        memory_type="episodic",
        filter_tags='{"priority": {"$gte": 3}, "tags": {"$contains": "travel"}}',
    )
    assert [item["id"] for item in body["results"]] == [imported[1]]
    body = await search(
        http, tenant, query="", memory_type="episodic", start_date="2024-06-01", end_date="2024-07-01T00:00:00Z"
    )
    assert [item["id"] for item in body["results"]] == [imported[1]]
    bad = await http.get("/memory/search", params={"filter_tags": '{"x": {"$regex": "a"}}'}, headers=tenant.headers)
    assert bad.status_code == 422 and "$regex" in bad.json()["detail"]
    bad = await http.get("/memory/search", params={"filter_tags": "{oops"}, headers=tenant.headers)
    assert bad.status_code == 422


async def test_bad_search_parameters_are_422(http, tenant):
    for params in (
        {"memory_type": "dreams"},
        {"search_method": "magic"},
        {"memory_type": "resource", "search_method": "embedding", "search_field": "content"},
        {"memory_type": "episodic", "search_field": "password"},
        {"start_date": "yesterday-ish"},
    ):
        response = await http.get("/memory/search", params={"query": "x", **params}, headers=tenant.headers)
        assert response.status_code == 422, (params, response.text)


async def test_scopes_and_organizations(http, server, tenant, other_tenant, imported):
    private = await create_tenant(server, "acme", client="private", write_scope="private", read_scopes=["private"])
    reader = await create_tenant(server, "acme", client="reader", write_scope=None, read_scopes=["default"])
    assert (await search(http, private, query="pottery"))["results"] == []
    assert (await search(http, other_tenant, query="pottery"))["results"] == []
    assert (await search(http, reader, query="pottery"))["results"]
    everyone = await http.get("/memory/search_all_users", params={"query": "Lisbon"}, headers=tenant.headers)
    assert everyone.json()["results"][0]["user_id"] == "alice"
    foreign = await http.get("/memory/search_all_users", params={"query": "Lisbon"}, headers=other_tenant.headers)
    assert foreign.json()["results"] == []
    spoof = await http.get(
        "/memory/search_all_users", params={"query": "Lisbon", "org_id": tenant.org_id}, headers=other_tenant.headers
    )
    assert spoof.status_code == 404


async def test_update_keeps_history_and_reembeds(http, tenant, imported):
    memory_id = imported[2]
    response = await http.patch(
        f"/memory/semantic/{memory_id}", json={"details": "An orange tabby that loves boxes"}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["memory"]["details"] == "An orange tabby that loves boxes"
    body = await search(http, tenant, query="orange tabby", memory_type="semantic", search_method="embedding")
    assert body["results"][0]["id"] == memory_id
    history = (await http.get(f"/memory/semantic/{memory_id}/history", headers=tenant.headers)).json()["history"]
    assert [entry["operation"] for entry in history] == ["insert", "update"]
    assert history[1]["before"]["details"].startswith("A grey British shorthair")


async def test_delete_hides_the_item(http, tenant, imported):
    memory_id = imported[0]
    response = await http.delete(f"/memory/episodic/{memory_id}", headers=tenant.headers)
    assert response.json() == {"success": True, "message": f"Episodic memory {memory_id} deleted"}
    assert (await search(http, tenant, query="pottery", memory_type="episodic", search_method="bm25"))["results"] == []
    assert (await http.delete(f"/memory/episodic/{memory_id}", headers=tenant.headers)).status_code == 404
    history = await http.get(f"/memory/episodic/{memory_id}/history", headers=tenant.headers)
    assert history.status_code == 404  # deleted items are gone for callers; history stays in the database
