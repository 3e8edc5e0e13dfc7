"""Prompt-ready retrieval by conversation and topic, components and fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.support import Tenant


@pytest.fixture
async def alice(http: httpx.AsyncClient, tenant: Tenant) -> dict[str, str]:
    now = datetime.now(UTC)
    await http.post("/users/create_or_get", json={"user_id": "alice", "timezone": "UTC"}, headers=tenant.headers)
    items = [
        {
            "memory_type": "episodic",
            "user_id": "alice",
            "occurred_at": (now - timedelta(days=1)).isoformat(),
            "summary": "Alice baked sourdough bread",
            "details": "She baked a sourdough loaf with rye flour",
        },
        {
            "memory_type": "episodic",
            "user_id": "alice",
            "occurred_at": (now - timedelta(days=40)).isoformat(),
            "summary": "Alice visited the bakery museum",
            "details": "A museum about bread history",
        },
        {
            "memory_type": "semantic",
            "user_id": "alice",
            "name": "Sourdough starter",
            "summary": "Alice keeps a sourdough starter called Bubbles",
            "details": "Fed daily with rye flour",
        },
        {
            "memory_type": "procedural",
            "user_id": "alice",
            "entry_type": "recipe",
            "summary": "Bread recipe",
            "steps": ["mix flour and water", "bake at 250C"],
        },
        {
            "memory_type": "resource",
            "user_id": "alice",
            "title": "Bread book",
            "summary": "A book on baking",
            "resource_type": "pdf_text",
            "content": "Chapter one: flour",
        },
        {
            "memory_type": "knowledge_vault",
            "user_id": "alice",
            "sensitivity": "high",
            "caption": "Bakery wifi password",
            "secret_value": "flour123",
        },
        {
            "memory_type": "knowledge_vault",
            "user_id": "alice",
            "sensitivity": "low",
            "caption": "Bakery opening hours",
            "secret_value": "8am-6pm",
        },
    ]
    response = await http.post("/memory/import", json={"items": items}, headers=tenant.headers)
    ids = response.json()["ids"]
    await http.post(
        "/blocks",
        json={"block": {"label": "human", "value": "Alice loves bread"}, "user": {"id": "alice"}},
        headers=tenant.headers,
    )
    return {"yesterday": ids[0], "old": ids[1], "starter": ids[2], "secret": ids[5], "hours": ids[6]}


async def test_retrieve_by_conversation_with_time(http, tenant, alice):
    body = {
        "user_id": "alice",
        "messages": [
            {"role": "user", "content": "What did I bake yesterday?"},
            {"role": "assistant", "content": [{"type": "text", "text": "Let me check."}]},
        ],
    }
    response = await http.post("/memory/retrieve/conversation", json=body, headers=tenant.headers)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["success"] is True
    assert result["temporal_expression"] == "yesterday"
    assert result["date_range"]["start"] and result["date_range"]["end"]
    episodic = result["memories"]["episodic"]
    assert [item["id"] for item in episodic["recent"]] == [alice["yesterday"]]
    assert episodic["relevant"][0]["id"] == alice["yesterday"]
    assert episodic["total_count"] == 2
    assert result["memories"]["semantic"]["items"][0]["id"] == alice["starter"]
    core = result["memories"]["core"]
    assert core["scopes"]["default"]["items"][0]["value"] == "Alice loves bread"


async def test_retrieval_never_puts_high_sensitivity_secrets_in_prompts(http, tenant, alice):
    response = await http.get(
        "/memory/retrieve/topic", params={"user_id": "alice", "topic": "bakery"}, headers=tenant.headers
    )
    items = response.json()["memories"]["knowledge_vault"]["items"]
    assert [item["id"] for item in items] == [alice["hours"]]
    assert all("secret_value" not in item for item in items)


async def test_retrieve_topic_shapes(http, tenant, alice):
    response = await http.get(
        "/memory/retrieve/topic", params={"user_id": "alice", "topic": "sourdough"}, headers=tenant.headers
    )
    result = response.json()
    assert result["topic"] == "sourdough" and result["success"] is True
    assert set(result["memories"]) == {"episodic", "semantic", "procedural", "resource", "knowledge_vault", "core"}
    assert set(result["memories"]["episodic"]["relevant"][0]) >= {"id", "timestamp", "summary", "details"}
    assert set(result["memories"]["resource"]["items"][0]) == {"id", "title", "summary", "resource_type"}


async def test_explicit_dates_win_and_bad_dates_are_422(http, tenant, alice):
    now = datetime.now(UTC)
    body = {
        "user_id": "alice",
        "messages": [{"role": "user", "content": "bread yesterday"}],
        "start_date": (now - timedelta(days=60)).isoformat(),
        "end_date": (now - timedelta(days=30)).isoformat(),
    }
    result = (await http.post("/memory/retrieve/conversation", json=body, headers=tenant.headers)).json()
    assert [item["id"] for item in result["memories"]["episodic"]["recent"]] == [alice["old"]]
    assert result["temporal_expression"] is None
    body["start_date"] = "not a date"
    assert (await http.post("/memory/retrieve/conversation", json=body, headers=tenant.headers)).status_code == 422


async def test_read_scopes_in_filter_tags_are_ignored_like_mirix(http, tenant, alice):
    body = {
        "user_id": "alice",
        "messages": [{"role": "user", "content": "sourdough"}],
        "filter_tags": {"read_scopes": ["other"], "scope": "default"},
    }
    response = await http.post("/memory/retrieve/conversation", json=body, headers=tenant.headers)
    assert response.status_code == 200 and response.json()["memories"]["semantic"]["items"]


async def test_components_and_fields(http, tenant, alice):
    body = (await http.get("/memory/components", params={"user_id": "alice"}, headers=tenant.headers)).json()
    assert body["memories"]["episodic"]["total_count"] == 2
    assert [i["id"] for i in body["memories"]["episodic"]["items"]] == [alice["yesterday"], alice["old"]]
    assert body["memories"]["core"]["total_count"] == 1
    one = (
        await http.get(
            "/memory/components", params={"user_id": "alice", "memory_type": "SEMANTIC"}, headers=tenant.headers
        )
    ).json()
    assert set(one["memories"]) == {"semantic"}
    bad = await http.get("/memory/components", params={"memory_type": "dreams"}, headers=tenant.headers)
    assert bad.status_code == 422
    fields = (await http.get("/memory/fields", headers=tenant.headers)).json()["fields"]
    assert fields["episodic"] == ["summary", "details"] and fields["core"] == ["label", "value"]
