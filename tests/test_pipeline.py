"""The write path end to end over HTTP: /memory/add → job → meta agent → memory agents → searchable
memories, with a scripted fake LLM provider speaking the OpenAI wire format on loopback."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from mirix.schemas.jobs import AddMemoryRequest
from mirix.server.server import AsyncServer
from tests.fakes import FakeProvider, Fault, RecordedRequest, Reply
from tests.support import Tenant, create_tenant


def route_and_extract(request: RecordedRequest) -> Reply:
    """A stand-in model: routes to episodic + semantic, and stores what the user said verbatim."""
    said = re.findall(r"I (.+?)(?:\.|$)", request.prompt_text.split("The conversation:")[-1])
    if "trigger_memory_update" in request.tools:
        return Reply.tool_call(
            "trigger_memory_update", {"memory_types": ["episodic", "semantic"], "instructions": "store it"}
        )
    if "episodic_memory_insert" in request.tools:
        return Reply.tool_call(
            "episodic_memory_insert",
            {
                "items": [
                    {
                        "summary": f"User {text}",
                        "details": f"The user said: I {text}.",
                        "actor": "user",
                        "event_type": "activity",
                    }
                    for text in said
                ]
            },
        )
    if "semantic_memory_insert" in request.tools:
        return Reply.tool_call(
            "semantic_memory_insert",
            {
                "items": [
                    {"name": "Rex", "summary": "Rex is the user's dog", "details": "A beagle", "source": "conversation"}
                ]
            },
        )
    if "core_memory_append" in request.tools:
        return Reply.tool_call("core_memory_append", {"label": "human", "content": "Has a dog named Rex"})
    return Reply.tool_call("finish_memory_update", {})


@pytest.fixture
async def fake():
    async with FakeProvider(responder=route_and_extract) as provider:
        yield provider


def llm_config(fake: FakeProvider) -> dict:
    return {
        "model": "gpt-test",
        "model_endpoint_type": "openai",
        "model_endpoint": fake.openai_base_url,
        "api_key": "sk-test",
        "context_window": 128000,
    }


async def initialize(http, tenant: Tenant, fake: FakeProvider, **meta_agent_config) -> dict:
    config = {"llm_config": llm_config(fake), "meta_agent_config": meta_agent_config}
    response = await http.post("/agents/meta/initialize", json={"config": config}, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def add(http, tenant, text: str, user_id: str = "alice", **extra) -> str:
    body = {
        "user_id": user_id,
        "messages": [{"role": "user", "content": text}, {"role": "assistant", "content": "Noted!"}],
        **extra,
    }
    response = await http.post("/memory/add", json=body, headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "queued" and response.json()["success"] is True
    return response.json()["job_id"]


async def wait_job(http, tenant, job_id: str, within: float = 20) -> dict:
    async with asyncio.timeout(within):
        while True:
            job = (await http.get(f"/memory/jobs/{job_id}", headers=tenant.headers)).json()
            if job["status"] in ("succeeded", "failed"):
                return job
            await asyncio.sleep(0.02)


async def test_add_extracts_searchable_memories(http, tenant, fake, workers):
    meta = await initialize(http, tenant, fake)
    assert {c["name"] for c in meta["children"]} >= {"meta_memory_agent_episodic_memory_agent"}
    job_id = await add(http, tenant, "I adopted a beagle called Rex.")
    job = await wait_job(http, tenant, job_id)
    assert job["status"] == "succeeded", job
    assert job["llm_calls"] == 3, "one routing call plus one call per chosen memory agent"
    assert job["prompt_tokens"] > 0 and job["completion_tokens"] > 0
    assert len(job["written_ids"]) == 2
    found = await http.get("/memory/search", params={"user_id": "alice", "query": "beagle Rex"}, headers=tenant.headers)
    by_kind = {item["memory_type"]: item["id"] for item in found.json()["results"]}
    assert set(by_kind) == {"episodic", "semantic"} and set(by_kind.values()) == set(job["written_ids"])
    history = await http.get(f"/memory/episodic/{by_kind['episodic']}/history", headers=tenant.headers)
    assert history.json()["history"][0]["job_id"] == job_id


async def test_memory_types_skip_routing(http, tenant, fake, workers):
    await initialize(http, tenant, fake)
    job = await wait_job(http, tenant, await add(http, tenant, "I ran 5k today.", memory_types=["episodic"]))
    assert job["status"] == "succeeded" and job["llm_calls"] == 1
    assert not any("trigger_memory_update" in r.tools for r in fake.chat_requests)


async def test_system_prompt_overrides_reach_the_jobs_agents(http, tenant, fake, workers):
    await initialize(http, tenant, fake)
    for path, text in (("by-name/meta/system", "Route with care."), ("by-name/episodic/system", "Keep events.")):
        assert (await http.patch(f"/agents/{path}", json={"system_prompt": text}, headers=tenant.headers)).is_success
    job = await wait_job(http, tenant, await add(http, tenant, "I adopted a beagle called Rex."))
    assert job["status"] == "succeeded", job
    systems = {tool: r.system for r in fake.chat_requests for tool in r.tools}
    assert "Route with care." in systems["trigger_memory_update"]
    assert "Keep events." in systems["episodic_memory_insert"]
    assert "Keep events." not in systems["semantic_memory_insert"]  # only that agent's prompt changed


async def test_jobs_of_one_user_run_in_order_and_users_in_parallel(http, tenant, fake, workers):
    await initialize(http, tenant, fake)
    fake.latency = 0.2
    alice_jobs = [await add(http, tenant, f"I did task {i}.", memory_types=["episodic"]) for i in range(3)]
    bob_jobs = [
        await add(http, tenant, f"I did chore {i}.", user_id="bob", memory_types=["episodic"]) for i in range(3)
    ]
    results = [await wait_job(http, tenant, job_id) for job_id in alice_jobs + bob_jobs]
    assert all(job["status"] == "succeeded" for job in results)
    for user_jobs in (results[:3], results[3:]):
        finished = [job["finished_at"] for job in user_jobs]
        assert finished == sorted(finished), "one user's jobs finish in the order they were added"
        starts = [job["started_at"] for job in user_jobs]
        assert all(s >= f for s, f in zip(starts[1:], finished[:-1], strict=True)), "and never overlap"
    overlapping = [
        (a, b)
        for a in results[:3]
        for b in results[3:]
        if a["started_at"] < b["finished_at"] and b["started_at"] < a["finished_at"]
    ]
    assert overlapping, "two users' jobs ran side by side"


async def test_read_only_client_and_missing_llm(http, server, tenant, fake):
    reader = await create_tenant(server, "acme", client="reader", write_scope=None, read_scopes=["default"])
    body = {"messages": [{"role": "user", "content": "hi"}]}
    assert (await http.post("/memory/add", json=body, headers=reader.headers)).status_code == 403
    init = await http.post(
        "/agents/meta/initialize", json={"config": {"llm_config": llm_config(fake)}}, headers=reader.headers
    )
    assert init.status_code == 200 and init.json() is None
    no_llm = await http.post("/memory/add", json=body, headers=tenant.headers)
    assert no_llm.status_code == 422 and "MIRIX_LLM_MODEL" in no_llm.json()["detail"]
    await initialize(http, tenant, fake)
    foreign = await http.post("/memory/add", json={**body, "meta_agent_id": "agent-nope"}, headers=tenant.headers)
    assert foreign.status_code == 404


async def test_provider_rate_limit_is_retried(http, tenant, fake, workers):
    await initialize(http, tenant, fake)
    fake.queue(Fault.status(429, retry_after=0.01))
    job = await wait_job(http, tenant, await add(http, tenant, "I baked bread.", memory_types=["episodic"]))
    assert job["status"] == "succeeded"


async def test_persistent_server_errors_fail_the_job_without_writes(http, server, tenant, fake, workers):
    await initialize(http, tenant, fake)
    server.job_runner._backoff = 0.01
    fake.responder = lambda request: Fault.status(500)
    job = await wait_job(http, tenant, await add(http, tenant, "I lost my keys."), within=60)
    assert job["status"] == "failed" and "500" in job["error"]
    assert job["written_ids"] == [] and job["attempts"] >= 2
    found = await http.get("/memory/search", params={"user_id": "alice", "query": "keys"}, headers=tenant.headers)
    assert found.json()["results"] == []


async def test_add_sync_waits(http, tenant, fake, workers):
    await initialize(http, tenant, fake)
    body = {"user_id": "alice", "messages": [{"role": "user", "content": "I moved to Oslo."}]}
    response = await http.post("/memory/add_sync", json=body, headers=tenant.headers)
    assert response.status_code == 200
    assert response.json()["success"] is True and response.json()["status"] == "processed"


async def test_queued_and_interrupted_jobs_resume_after_restart(http, server, settings, tenant, fake):
    await initialize(http, tenant, fake)
    queued = await add(http, tenant, "I planted tulips.", memory_types=["episodic"])  # no workers: stays queued
    interrupted = await add(http, tenant, "I painted the fence.", memory_types=["episodic"])
    await server.jobs.claim(interrupted)  # as if a worker had started it when the process died
    await server.close()
    # Its lease is still live; the same replica id (SQLite: any restart) knows the job is orphaned.
    restarted = await AsyncServer.start(settings.model_copy(update={"replica_id": server.jobs.replica_id}))
    try:
        await restarted.start_workers()
        for job_id in (queued, interrupted):
            job = await restarted.jobs.wait(tenant.actor, job_id, 20)
            assert job.status == "succeeded", job.error
        assert (await restarted.jobs.get(tenant.actor, interrupted)).attempts == 2
    finally:
        await restarted.close()


async def test_images_and_files_reach_the_model(http, tenant, fake, workers):
    await initialize(http, tenant, fake)
    image = "data:image/png;base64,iVBORw0KGgo="
    body = {
        "user_id": "alice",
        "memory_types": ["resource"],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Here is my floor plan."},
                    {"type": "image_url", "image_url": {"url": image}},
                    {"type": "file_uri", "file_id": "file-123"},
                ],
            }
        ],
    }
    job_id = (await http.post("/memory/add", json=body, headers=tenant.headers)).json()["job_id"]
    assert (await wait_job(http, tenant, job_id))["status"] == "succeeded"
    sent = json.dumps(fake.chat_requests[-1].body)
    assert image in sent and "file-123" in sent


async def test_retrieval_asks_the_llm_for_topics_and_time(http, tenant, fake):
    await initialize(http, tenant, fake)
    fake.queue(
        Reply.tool_call("update_topic_and_time", {"topic": "sourdough;bread", "temporal_expression": "last week"})
    )
    body = {"user_id": "alice", "messages": [{"role": "user", "content": "Remember what I baked the other day?"}]}
    result = (await http.post("/memory/retrieve/conversation", json=body, headers=tenant.headers)).json()
    assert result["topics"] == "sourdough;bread" and result["temporal_expression"] == "last week"
    assert result["date_range"]["start"] is not None
    fake.queue(Fault.status(400))  # a failing LLM step falls back to the conversation's own words
    result = (await http.post("/memory/retrieve/conversation", json=body, headers=tenant.headers)).json()
    assert result["success"] is True and result["topics"]


async def test_malformed_tool_calls_fail_the_job_after_retries_without_writes(http, server, tenant, fake, workers):
    await initialize(http, tenant, fake)
    server.job_runner._backoff = 0.01

    def responder(request: RecordedRequest) -> Reply:
        if "semantic_memory_insert" in request.tools:
            return Fault.malformed_tool_call("semantic_memory_insert", "items: <<Rex>> ??? }}")
        return route_and_extract(request)

    fake.responder = responder
    job = await wait_job(http, tenant, await add(http, tenant, "I adopted Rex."), within=60)
    assert job["status"] == "failed" and "semantic_memory_agent" in job["error"]
    assert job["attempts"] == server.settings.job_max_attempts
    found = await http.get("/memory/search", params={"user_id": "alice", "query": "Rex"}, headers=tenant.headers)
    assert found.json()["results"] == [], "the episodic agent's good write was not committed either"


async def test_a_malformed_call_the_model_corrects_is_fine(http, tenant, fake, workers):
    await initialize(http, tenant, fake)
    fake.queue(Fault.malformed_tool_call("episodic_memory_insert", "items: <<swim>> ??? }}"))
    job = await wait_job(http, tenant, await add(http, tenant, "I swam.", memory_types=["episodic"]))
    assert job["status"] == "succeeded" and job["llm_calls"] == 2
    assert "could not be read" in json.dumps(fake.chat_requests[-1].body)


async def test_provider_timeouts_fail_the_job_with_its_error(http, server, settings, tenant, fake):
    slow = settings.model_copy(
        update={
            "llm_timeout_seconds": 0.3,
            "llm_max_attempts": 2,
            "job_max_attempts": 2,
            "job_retry_backoff_seconds": 0.01,
        }
    )
    await initialize(http, tenant, fake)
    fake.responder = lambda request: Fault.timeout(seconds=2)
    other = await AsyncServer.start(slow)
    try:
        await other.start_workers()
        request = AddMemoryRequest(
            user_id="alice", messages=[{"role": "user", "content": "I ate."}], memory_types=["episodic"]
        )
        job = await other.add_memory(tenant.actor, request)
        finished = await other.jobs.wait(tenant.actor, job.id, 30)
        assert finished.status == "failed" and "Timeout" in finished.error
    finally:
        await other.close()
