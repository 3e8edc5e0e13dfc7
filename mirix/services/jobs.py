"""Jobs: the durable record of every memory write, from queued to succeeded or failed."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select, update

from mirix.db.base import new_id
from mirix.db.models import Job, Step
from mirix.db.types import utcnow
from mirix.errors import NotFoundError
from mirix.services.actor import Actor
from mirix.services.base import Manager
from mirix.services.users import UserManager

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
FINISHED = (SUCCEEDED, FAILED)


def usage_values(job_id: str) -> dict[str, Any]:
    """The job's LLM usage as subqueries over its steps rows, for the UPDATE that ends it."""
    steps = select(Step).where(Step.job_id == job_id).subquery()
    return {
        "llm_calls": select(func.count()).select_from(steps).scalar_subquery(),
        "prompt_tokens": select(func.coalesce(func.sum(steps.c.prompt_tokens), 0)).scalar_subquery(),
        "completion_tokens": select(func.coalesce(func.sum(steps.c.completion_tokens), 0)).scalar_subquery(),
    }


def user_key(org_id: str, user_id: str) -> str:
    """The ordering key: one user's jobs run one at a time."""
    return f"{org_id}/{user_id}"


class JobManager(Manager):
    def __init__(self, sessions) -> None:
        super().__init__(sessions)
        self._finished: dict[str, asyncio.Event] = {}

    async def create(
        self, actor: Actor, user_id: str, agent_id: str | None, payload: dict[str, Any], occurred_at=None
    ) -> Job:
        scope = actor.require_write_scope()
        job = Job(
            id=new_id("job"),
            organization_id=actor.organization_id,
            client_id=actor.client_id,
            user_id=user_id,
            agent_id=agent_id,
            scope=scope,
            payload=payload,
            occurred_at=occurred_at,
            status=QUEUED,
        )
        async with self._sessions.begin() as session:
            await UserManager.ensure(session, actor.organization_id, user_id)
            session.add(job)
        return job

    async def get(self, actor: Actor, job_id: str) -> Job:
        async with self._sessions() as session:
            job = await session.get(Job, job_id)
        if job is None or job.organization_id != actor.organization_id or job.client_id != actor.client_id:
            raise NotFoundError(f"Job {job_id} not found")
        return job

    async def claim(self, job_id: str) -> Job | None:
        """Mark a queued job running (one more attempt); None if someone else has it or it is done."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == QUEUED)
                .values(status=RUNNING, attempts=Job.attempts + 1, started_at=utcnow(), updated_at=utcnow())
            )
            if result.rowcount != 1:
                return None
            return await session.get(Job, job_id)

    async def fail(self, job_id: str, error: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(
                    status=FAILED, error=error[:4000], finished_at=utcnow(), updated_at=utcnow(), **usage_values(job_id)
                )
            )
        self.notify(job_id)

    async def note_retry(self, job_id: str, error: str) -> None:
        """Record a transient failure; the job stays running and is attempted again."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(attempts=Job.attempts + 1, error=error[:4000], updated_at=utcnow())
            )

    async def resumable(self) -> list[Job]:
        """Jobs a previous run left unfinished, oldest first; running ones are queued again."""
        async with self._sessions.begin() as session:
            await session.execute(update(Job).where(Job.status == RUNNING).values(status=QUEUED))
            return list(await session.scalars(select(Job).where(Job.status == QUEUED).order_by(Job.created_at)))

    # --- waiting for a job (add_sync) ------------------------------------------------------------

    def notify(self, job_id: str) -> None:
        event = self._finished.pop(job_id, None)
        if event is not None:
            event.set()

    async def wait(self, actor: Actor, job_id: str, within: float) -> Job:
        """Wait until the job finishes (here or in another replica) or ``within`` seconds pass."""
        event = self._finished.setdefault(job_id, asyncio.Event())
        deadline = asyncio.get_running_loop().time() + within
        while True:
            job = await self.get(actor, job_id)
            remaining = deadline - asyncio.get_running_loop().time()
            if job.status in FINISHED or remaining <= 0:
                self._finished.pop(job_id, None)
                return job
            try:
                # The local worker wakes us; a job run by another replica is noticed by polling.
                await asyncio.wait_for(event.wait(), min(remaining, 1.0))
            except TimeoutError:
                pass
