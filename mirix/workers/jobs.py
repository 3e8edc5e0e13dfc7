"""The job runner: claims a job, runs the memory pipeline, retries transient failures with back-off,
and records every ending — a job is never silently dropped."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from mirix.agents.pipeline import MemoryPipeline, PermanentJobError
from mirix.db.models import Client, Job
from mirix.llm.base import LLMClient, LLMError
from mirix.logs import request_id_var
from mirix.services.clients import actor_for
from mirix.services.jobs import JobManager

log = logging.getLogger(__name__)

#: Resolves the LLM and the prompt lookup for a job (its meta agent's configuration, or defaults).
LLMResolver = Callable[[Job], Awaitable[tuple[LLMClient, Callable[[str], Awaitable[str]]]]]


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
    ) -> None:
        self._sessions = sessions
        self._jobs = jobs
        self._pipeline = pipeline
        self._resolve_llm = resolve_llm
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds

    async def __call__(self, job_id: str) -> None:
        job = await self._jobs.claim(job_id)
        if job is None:
            return  # finished already, or claimed by another worker
        token = request_id_var.set(job_id)
        try:
            await self._run(job)
        finally:
            self._jobs.notify(job_id)
            request_id_var.reset(token)

    async def _run(self, job: Job) -> None:
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
                    return
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
        except (PermanentJobError, LLMError) as exc:
            log.warning("job %s failed: %s", job.id, exc)
            await self._jobs.fail(job.id, f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # a bug: still end the job with its error rather than leave it hanging
            log.exception("job %s crashed", job.id)
            await self._jobs.fail(job.id, f"internal error: {type(exc).__name__}: {exc}")
