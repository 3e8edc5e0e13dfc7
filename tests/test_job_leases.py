"""Leases on running jobs: what lets several replicas share one jobs table safely."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select, update

from mirix.db.models import EpisodicMemory, Job
from mirix.schemas.jobs import AddMemoryRequest
from mirix.server.server import AsyncServer
from mirix.services.jobs import JobManager, LeaseLostError
from mirix.workers.lease import ABANDONED, acquire, hold_lease
from tests.fakes import FakeProvider, RecordedRequest, Reply
from tests.support import Tenant


def replica(server: AsyncServer, name: str, lease_seconds: float = 60.0) -> JobManager:
    """Another replica's view of the same jobs table (SQLite counts as shared here too)."""
    return JobManager(server.sessions, replica_id=name, lease_seconds=lease_seconds)


async def queued_job(server: AsyncServer, tenant: Tenant, text: str = "I swam.") -> str:
    job = await server.jobs.create(
        tenant.actor, "alice", None, {"messages": [{"role": "user", "content": text}], "memory_types": ["episodic"]}
    )
    return job.id


async def test_a_live_lease_keeps_other_replicas_out_until_it_expires(server, tenant):
    job_id = await queued_job(server, tenant)
    a, b = replica(server, "replica-a", lease_seconds=0.4), replica(server, "replica-b")
    claimed = await a.claim(job_id)
    assert claimed is not None and (claimed.locked_by, claimed.attempts) == ("replica-a", 1)
    assert await b.claim(job_id) is None, "held by a live replica"
    assert [job.id for job in await b.resumable()] == [], "not resumed while its replica is alive"
    assert await a.renew(job_id)

    await asyncio.sleep(0.5)  # replica-a stopped renewing: it died
    assert [job.id for job in await b.resumable()] == [job_id]
    taken = await b.claim(job_id)
    assert taken is not None and (taken.locked_by, taken.attempts) == ("replica-b", 2)

    # The zombie can no longer renew, retry, or end the job.
    assert not await a.renew(job_id)
    assert not await a.fail(job_id, "boom")
    try:
        await a.note_retry(job_id, "transient")
        raise AssertionError("note_retry should refuse a lost lease")
    except LeaseLostError:
        pass
    assert await b.fail(job_id, "really failed")
    assert await b.claim(job_id) is None and await a.claim(job_id) is None, "an ended job is never claimed again"


async def test_a_clean_stop_releases_leases_and_a_restart_under_the_same_id_resumes(server, tenant):
    first, second = await queued_job(server, tenant, "I ran."), await queued_job(server, tenant, "I sang.")
    a, b = replica(server, "replica-a"), replica(server, "replica-b")
    await a.claim(first)
    await a.claim(second)
    await a.release_held()
    assert {job.id for job in await b.resumable()} == {first, second}
    assert (await b.claim(first)).locked_by == "replica-b"
    restarted_b = replica(server, "replica-b")  # same id: its old leases are known to be orphaned
    assert {job.id for job in await restarted_b.resumable()} == {first, second}


async def test_waiting_for_a_job_another_replica_holds(server, tenant):
    job_id = await queued_job(server, tenant)
    a, b = replica(server, "replica-a", lease_seconds=0.3), replica(server, "replica-b")
    await a.claim(job_id)
    started = asyncio.get_running_loop().time()
    taken = await asyncio.wait_for(acquire(b, job_id, poll_seconds=0.05), 5)
    assert taken is not None and taken.locked_by == "replica-b"
    assert asyncio.get_running_loop().time() - started >= 0.2, "waited for the lease to run out"

    other = await queued_job(server, tenant, "I read.")
    await a.claim(other)
    waiter = asyncio.create_task(acquire(b, other, poll_seconds=0.05))
    await asyncio.sleep(0.1)
    assert await a.fail(other, "done")  # the holder ends it: the waiter skips it
    assert await asyncio.wait_for(waiter, 5) is None


async def test_a_lost_lease_cancels_the_run(server, tenant):
    job_id = await queued_job(server, tenant)
    a = replica(server, "replica-a")
    await a.claim(job_id)

    async def work() -> str:
        await asyncio.sleep(30)
        return "succeeded"

    async with server.sessions.begin() as session:  # another replica took it over
        await session.execute(update(Job).where(Job.id == job_id).values(locked_by="replica-b"))
    assert await asyncio.wait_for(hold_lease(a, job_id, work(), renew_seconds=0.05), 5) == ABANDONED


async def test_a_zombie_replica_cannot_commit_its_writes(server, tenant, http):
    """The final UPDATE of a job checks the lease: a replica that lost it rolls everything back."""
    held, release = asyncio.Event(), asyncio.Event()

    async def model(request: RecordedRequest) -> Reply:
        held.set()
        await release.wait()
        item = {"summary": "User swam", "details": "The user swam.", "actor": "user", "event_type": "activity"}
        return Reply.tool_call("episodic_memory_insert", {"items": [item]})

    async with FakeProvider(responder=model) as fake:
        llm = {"model": "m", "model_endpoint_type": "openai", "model_endpoint": fake.openai_base_url, "api_key": "k"}
        response = await http.post(
            "/agents/meta/initialize", json={"config": {"llm_config": llm}}, headers=tenant.headers
        )
        assert response.status_code == 200, response.text
        request = AddMemoryRequest(
            user_id="alice", messages=[{"role": "user", "content": "I swam."}], memory_types=["episodic"]
        )
        job = await server.add_memory(tenant.actor, request)  # no workers: the test runs it below
        run = asyncio.create_task(server.job_runner(job.id))
        await asyncio.wait_for(held.wait(), 10)
        async with server.sessions.begin() as session:  # it stalled past its lease; replica-b took the job
            await session.execute(update(Job).where(Job.id == job.id).values(locked_by="replica-b"))
        release.set()
        await asyncio.wait_for(run, 10)
    async with server.sessions() as session:
        row = await session.get(Job, job.id)
        written = await session.scalar(
            select(func.count()).select_from(EpisodicMemory).where(EpisodicMemory.job_id == job.id)
        )
    assert (row.status, row.locked_by, written) == ("running", "replica-b", 0)
