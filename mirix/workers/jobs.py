"""The job runner: claims a job, runs the memory pipeline, retries transient failures with back-off,
and records every ending — a job is never silently dropped."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from mirix.agents.pipeline import MemoryPipeline, PermanentJobError
from mirix.db.models import Client, Job
from mirix.llm.base import LLMClient, LLMError
from mirix.logs import job_id_var, request_id_var
from mirix.services.clients import actor_for
from mirix.services.jobs import FAILED, SUCCEEDED, JobManager, LeaseLostError
from mirix.workers.lease import ABANDONED, acquire, hold_lease

log = logging.getLogger(__name__)

#: Resolves the LLM and the prompt lookup for a job (its meta agent's configuration, or defaults).
LLMResolver = Callable[[Job], Awaitable[tuple[LLMClient, Callable[[str], Awaitable[str]]]]]
#: Told how each job run ended (succeeded/failed) and how long it took (seconds): metrics.
JobObserver = Callable[[str, float], None]


class JobRunner:
    def __init__(
        self,
        sessions: Any,
        jobs: JobManager,
        pipeline: MemoryPipeline,
        resolve_llm: LLMResolver,
        *,
        max_attempts: int = 3,
        backoff_seconds: float = 2.0,
        observe: JobObserver | None = None,
        lease_renew_seconds: float = 15.0,
    ) -> None:
        self._sessions = sessions
        self._jobs = jobs
        self._pipeline = pipeline
        self._resolve_llm = resolve_llm
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._observe = observe
        self._renew = lease_renew_seconds

    async def __call__(self, job_id: str) -> None:
        job = await acquire(self._jobs, job_id, self._renew)
        if job is None:
            return  # finished already (here or by another replica)
        # Log lines of the job carry its id and the id of the request that queued it.
        queued_by = (job.payload or {}).get("request_id")
        request_token = request_id_var.set(queued_by if queued_by not in (None, "-") else job_id)
        job_token = job_id_var.set(job_id)
        started = time.perf_counter()
        try:
            outcome = await hold_lease(self._jobs, job.id, self._run(job), self._renew)
            if self._observe is not None:
                self._observe(outcome, time.perf_counter() - started)
        finally:
            self._jobs.drop_steps(job_id)  # held by an attempt that ended without writing them
            self._jobs.notify(job_id)
            job_id_var.reset(job_token)
            request_id_var.reset(request_token)

    async def _run(self, job: Job) -> str:
        try:
            async with self._sessions() as session:
                client = await session.get(Client, job.client_id)
            if client is None or client.is_deleted or client.status != "active":
                raise PermanentJobError("the client that queued this job is no longer active")
            actor = actor_for(client)
            llm, prompts = await self._resolve_llm(job)
            attempt = 1
            while True:
                try:
                    await self._pipeline.run(job, actor, llm, prompts)
                    log.info("job %s succeeded", job.id)
                    return SUCCEEDED
                except LLMError as exc:
                    if not exc.transient or attempt >= self._max_attempts:
                        raise
                    await self._jobs.note_retry(job.id, f"{type(exc).__name__}: {exc}")
                    delay = self._backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)  # noqa: S311
                    log.warning("job %s attempt %d failed (%s); retrying in %.1fs", job.id, attempt, exc, delay)
                    await asyncio.sleep(delay)
                    attempt += 1
        except asyncio.CancelledError:
            raise  # shutdown: the job stays running in the database and is resumed at the next start
        except LeaseLostError as exc:
            log.warning("job %s abandoned: %s", job.id, exc)
            return ABANDONED  # the replica that took it over finishes it
        except (PermanentJobError, LLMError) as exc:
            log.warning("job %s failed: %s", job.id, exc)
            await self._jobs.fail(job.id, f"{type(exc).__name__}: {exc}")
            return FAILED
        except Exception as exc:  # a bug: still end the job with its error rather than leave it hanging
            log.exception("job %s crashed", job.id)
            await self._jobs.fail(job.id, f"internal error: {type(exc).__name__}: {exc}")
            return FAILED
