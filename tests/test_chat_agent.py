"""The chat agent: memory-informed answers, tool use, history, and token streaming over SSE."""

from __future__ import annotations

import json

import pytest

from mirix.tools.web_search import WebResult
from tests.fakes import FakeProvider, Reply
from tests.test_pipeline import llm_config


@pytest.fixture
async def fake():
    async with FakeProvider() as provider:
        yield provider


@pytest.fixture
async def chat_agent(http, tenant, fake) -> str:
    items = [
        {
            "memory_type": "semantic",
            "user_id": "alice",
            "name": "Rex",
            "summary": "Rex is Alice's beagle",
            "details": "Rex loves the beach",
        }
    ]
    await http.post("/memory/import", json={"items": items}, headers=tenant.headers)
    response = await http.post(
        "/agents",
        json={"name": "assistant", "agent_type": "chat_agent", "llm_config": llm_config(fake)},
        headers=tenant.headers,
    )
    return response.json()["id"]


async def test_answer_uses_memories_and_history(http, tenant, fake, chat_agent):
    fake.queue(Reply.text("Your dog is Rex."), Reply.text("He loves the beach."))
    body = {"message": "What is my dog called?", "role": "user", "user_id": "alice"}
    response = await http.post(f"/agents/{chat_agent}/messages", json=body, headers=tenant.headers)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["messages"][-1] == {
        **result["messages"][-1],
        "message_type": "assistant_message",
        "content": "Your dog is Rex.",
    }
    assert result["usage"]["total_tokens"] > 0 and result["usage"]["step_count"] == 1
    assert "Rex is Alice's beagle" in fake.chat_requests[0].system
    await http.post(
        f"/agents/{chat_agent}/messages", json={**body, "message": "What does he like?"}, headers=tenant.headers
    )
    second = fake.chat_requests[1].prompt_text
    assert "What is my dog called?" in second and "Your dog is Rex." in second


async def test_streaming_tokens_as_server_sent_events(http, tenant, fake, chat_agent):
    fake.queue(Reply.text("Rex is a very good dog."))
    body = {"message": "Tell me about Rex", "role": "user", "user_id": "alice", "stream": True}
    events = []
    async with http.stream("POST", f"/agents/{chat_agent}/messages", json=body, headers=tenant.headers) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                events.append(line.removeprefix("data: "))
    assert events[-1] == "[DONE]"
    parsed = [json.loads(event) for event in events[:-1]]
    deltas = [e["content"] for e in parsed if e["message_type"] == "assistant_message"]
    assert len(deltas) > 1 and "".join(deltas) == "Rex is a very good dog."
    assert parsed[-1]["message_type"] == "usage_statistics"


async def test_memory_and_web_search_tools(http, server, tenant, fake, chat_agent):
    class FakeWeb:
        async def search(self, query: str, max_results: int) -> list[WebResult]:
            return [WebResult("Beagle", "https://example.test/beagle", f"results for {query}")]

    server.chat._web = FakeWeb()
    fake.queue(
        Reply.tool_calls(
            [
                ("search_in_memory", {"memory_type": "semantic", "query": "dog"}),
                ("web_search", {"query": "beagle exercise"}),
            ]
        ),
        Reply.text("Rex needs long walks."),
    )
    body = {"message": "How much exercise does my dog need?", "role": "user", "user_id": "alice"}
    result = (await http.post(f"/agents/{chat_agent}/messages", json=body, headers=tenant.headers)).json()
    kinds = [m["message_type"] for m in result["messages"]]
    assert kinds.count("tool_call_message") == 2 and kinds.count("tool_return_message") == 2
    assert result["messages"][-1]["content"] == "Rex needs long walks."
    assert set(fake.chat_requests[0].tools) == {"search_in_memory", "web_search"}
    follow_up = fake.chat_requests[1].prompt_text
    assert "Rex is Alice's beagle" in follow_up and "results for beagle exercise" in follow_up


async def test_message_to_meta_agent_queues_memory_extraction(http, tenant, fake):
    config = {"llm_config": llm_config(fake)}
    meta = (await http.post("/agents/meta/initialize", json={"config": config}, headers=tenant.headers)).json()
    response = await http.post(
        f"/agents/{meta['id']}/messages", json={"message": "I like jazz", "role": "user"}, headers=tenant.headers
    )
    assert response.status_code == 200 and response.json()["messages"] == []
    job = (await http.get(f"/memory/jobs/{response.json()['job_id']}", headers=tenant.headers)).json()
    assert job["status"] == "queued"


async def test_provider_failure_is_a_clear_error(http, tenant, fake, chat_agent):
    from tests.fakes import Fault

    fake.responder = lambda request: Fault.status(400, "bad request")
    body = {"message": "hi", "role": "user", "user_id": "alice"}
    response = await http.post(f"/agents/{chat_agent}/messages", json=body, headers=tenant.headers)
    assert response.status_code == 502 and "LLM provider error" in response.json()["detail"]
    events = []
    async with http.stream(
        "POST", f"/agents/{chat_agent}/messages", json={**body, "stream": True}, headers=tenant.headers
    ) as streamed:
        async for line in streamed.aiter_lines():
            if line.startswith("data: "):
                events.append(line.removeprefix("data: "))
    assert json.loads(events[0])["message_type"] == "error" and events[-1] == "[DONE]"
