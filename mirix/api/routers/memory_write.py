"""Memory writes: ``/memory/add`` queues a job and answers at once; ``add_sync`` waits for it."""

from __future__ import annotations

from fastapi import APIRouter

from mirix.api.deps import CurrentActor, Server
from mirix.db.models import Job
from mirix.schemas.common import IdStr
from mirix.schemas.jobs import AddMemoryRequest, AddMemoryResponse, JobInfo

router = APIRouter(prefix="/memory", tags=["memory"])


def job_info(job: Job) -> JobInfo:
    duration = None
    if job.started_at is not None and job.finished_at is not None:
        duration = int((job.finished_at - job.started_at).total_seconds() * 1000)
    return JobInfo(
        id=job.id,
        status=job.status,
        user_id=job.user_id,
        agent_id=job.agent_id,
        attempts=job.attempts,
        error=job.error,
        llm_calls=job.llm_calls,
        prompt_tokens=job.prompt_tokens,
        completion_tokens=job.completion_tokens,
        written_ids=job.written_ids or [],
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        duration_ms=duration,
    )


@router.post("/add", response_model=AddMemoryResponse, summary="Queue a conversation for memory extraction")
async def add_memory(server: Server, actor: CurrentActor, body: AddMemoryRequest):
    job = await server.add_memory(actor, body)
    return AddMemoryResponse(
        message="Memory queued for processing",
        status="queued",
        agent_id=job.agent_id,
        message_count=len(body.messages),
        job_id=job.id,
    )


@router.post("/add_sync", summary="Extract memories from a conversation and wait until they are written")
async def add_memory_sync(server: Server, actor: CurrentActor, body: AddMemoryRequest):
    job = await server.add_memory(actor, body)
    job = await server.jobs.wait(actor, job.id, server.settings.add_sync_timeout_seconds)
    succeeded = job.status == "succeeded"
    return {
        "success": succeeded,
        "message": "Memory processed successfully" if succeeded else f"Memory job {job.status}",
        "status": "processed" if succeeded else job.status,
        "agent_id": job.agent_id,
        "message_count": len(body.messages),
        "job_id": job.id,
        "error": job.error,
        "job": job_info(job).model_dump(mode="json"),
    }


@router.get("/jobs/{job_id}", response_model=JobInfo, summary="Status, cost and outcome of a memory job")
async def get_job(server: Server, actor: CurrentActor, job_id: IdStr):
    return job_info(await server.jobs.get(actor, job_id))
