"""Two real `mirix serve` replicas sharing PostgreSQL, one Kafka topic (and Redis when there is one),
with the fake LLM provider running in this process: jobs run exactly once, in order per user, and a
replica killed in the middle of a job leaves it to the other one."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from mirix.db.models import EpisodicMemory, Job, SemanticMemory
from mirix.server.server import AsyncServer
from mirix.settings import Settings
from tests.fakes import FakeProvider, RecordedRequest, Reply
from tests.replicas import Cluster, Replica, memory_model, start_replicas
from tests.support import Tenant, create_tenant

pytestmark = pytest.mark.postgres_only  # SQLite is single-node


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    """The LLM and embedding provider of both replicas, in this process."""
    async with FakeProvider(responder=memory_model) as provider:
        yield provider


@pytest.fixture
def cluster(settings: Settings, kafka_bootstrap: str, tmp_path: Path, fake: FakeProvider) -> Cluster:
    return Cluster(
        database_url=settings.database_url,
        kafka_bootstrap=kafka_bootstrap,
        data_root=tmp_path / "replicas",
        redis_url=os.environ.get("MIRIX_TEST_REDIS_URL"),
        embedding_url=fake.openai_base_url,
    )


@pytest.fixture
async def replicas(cluster: Cluster) -> AsyncIterator[list[Replica]]:
    started = await start_replicas(cluster, ["replica-a", "replica-b"])
    yield started
    for replica in started:
        await replica.stop()


async def initialize(replica: Replica, tenant: Tenant, fake: FakeProvider) -> None:
    llm = {"model": "gpt-test", "model_endpoint_type": "openai", "model_endpoint": fake.openai_base_url}
    async with httpx.AsyncClient(base_url=replica.url, headers=tenant.headers) as client:
        response = await client.post(
            "/agents/meta/initialize", json={"config": {"llm_config": {**llm, "api_key": "k"}}}
        )
        assert response.status_code == 200, response.text


async def add(client: httpx.AsyncClient, user: str, text: str) -> str:
    body = {"user_id": user, "messages": [{"role": "user", "content": text}]}
    response = await client.post("/memory/add", json=body)
    assert response.status_code == 200, response.text
    return response.json()["job_id"]


async def finished_jobs(server: AsyncServer, job_ids: list[str], replicas: list[Replica], within: float) -> list[Job]:
    try:
        async with asyncio.timeout(within):
            while True:
                async with server.sessions() as session:
                    jobs = list(await session.scalars(select(Job).where(Job.id.in_(job_ids))))
                if all(job.status in ("succeeded", "failed") for job in jobs):
                    return sorted(jobs, key=lambda job: job.created_at)
                await asyncio.sleep(0.2)
    except TimeoutError as exc:
        raise AssertionError("jobs did not finish:\n" + "\n\n".join(r.log_tail() for r in replicas)) from exc


async def memories_per_job(server: AsyncServer, model) -> dict[str, int]:
    async with server.sessions() as session:
        rows = await session.execute(select(model.job_id, func.count()).group_by(model.job_id))
    return dict(rows.all())


def assert_in_order_per_user(jobs: list[Job]) -> None:
    by_user: dict[str, list[Job]] = {}
    for job in jobs:  # sorted by submission
        by_user.setdefault(job.user_id, []).append(job)
    for user_jobs in by_user.values():
        for before, after in zip(user_jobs, user_jobs[1:], strict=False):
            assert before.finished_at <= after.started_at, f"{after.id} started before {before.id} finished"


async def test_two_replicas_run_each_job_exactly_once_in_order_per_user(server, replicas, fake):
    tenant = await create_tenant(server, "acme")
    fake.latency = 0.05
    await initialize(replicas[0], tenant, fake)
    clients = [httpx.AsyncClient(base_url=r.url, headers=tenant.headers, timeout=30) for r in replicas]

    async def user_adds(u: int) -> list[str]:
        # Each user's adds one after another, alternating between the two replicas' APIs.
        return [await add(clients[(u + i) % 2], f"user-{u}", f"I finished task {u}-{i}.") for i in range(10)]

    job_ids = [job_id for ids in await asyncio.gather(*(user_adds(u) for u in range(10))) for job_id in ids]
    for client in clients:
        await client.aclose()
    jobs = await finished_jobs(server, job_ids, replicas, within=90)

    assert len(jobs) == 100 and {job.status for job in jobs} == {"succeeded"}
    assert {job.attempts for job in jobs} == {1}, "no job was claimed twice"
    assert {job.llm_calls for job in jobs} == {3}, "and none ran twice, not even partly"
    assert len(fake.chat_requests) == 300
    for model in (EpisodicMemory, SemanticMemory):
        assert await memories_per_job(server, model) == {job.id: 1 for job in jobs}, f"one {model.__name__} per job"
    assert all(len(job.written_ids) == 2 for job in jobs)
    assert {job.locked_by for job in jobs} == {"replica-a", "replica-b"}, "both replicas took a share"
    assert_in_order_per_user(jobs)
    for replica in replicas:
        assert await replica.stop() == 0, replica.log_tail()


async def test_a_replica_killed_mid_job_leaves_it_to_the_other(server, replicas, fake):
    tenant = await create_tenant(server, "acme")
    held, release = asyncio.Event(), asyncio.Event()

    async def model(request: RecordedRequest) -> Reply:
        if "VICTIM-1" in request.prompt_text and not held.is_set():
            held.set()  # the first call of the victim job hangs: its replica is killed meanwhile
            await release.wait()
        return memory_model(request)

    fake.responder, fake.latency = model, 0.02
    await initialize(replicas[0], tenant, fake)
    async with httpx.AsyncClient(base_url=replicas[0].url, headers=tenant.headers, timeout=30) as client:
        victim = [await add(client, "victim", f"I did VICTIM-{i}.") for i in (1, 2)]
        others = [await add(client, f"user-{u}", f"I did chore {u}-{i}.") for u in range(4) for i in range(3)]
    await asyncio.wait_for(held.wait(), 30)
    async with server.sessions() as session:
        holder = (await session.get(Job, victim[0])).locked_by
    doomed = next(r for r in replicas if r.name == holder)
    survivor = next(r for r in replicas if r.name != holder)
    doomed.kill()
    await doomed.process.wait()
    release.set()
    jobs = await finished_jobs(server, victim + others, [survivor], within=60)

    by_id = {job.id: job for job in jobs}
    first, second = by_id[victim[0]], by_id[victim[1]]
    assert (first.status, first.locked_by, first.attempts) == ("succeeded", survivor.name, 2), survivor.log_tail()
    assert first.finished_at <= second.started_at and second.status == "succeeded"
    assert {job.status for job in jobs} == {"succeeded"}
    for memory in (EpisodicMemory, SemanticMemory):
        assert await memories_per_job(server, memory) == {job.id: 1 for job in jobs}, "each job's writes once"
    assert_in_order_per_user(jobs)
    assert await survivor.stop() == 0, survivor.log_tail()
