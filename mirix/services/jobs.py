"""Jobs: the durable record of every memory write, from queued to succeeded or failed."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mirix.db.base import new_id
from mirix.db.models import Job, Step
from mirix.db.types import utcnow
from mirix.errors import NotFoundError
from mirix.services.actor import Actor
from mirix.services.base import Manager
from mirix.services.users import UserManager

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
FINISHED = (SUCCEEDED, FAILED)


class LeaseLostError(Exception):
    """Another replica took the job over (this one's lease expired): its work here must not be committed."""


def held_by(job_id: str, holder: str | None) -> list:
    """WHERE clauses of an UPDATE that may only change a job still running under ``holder``'s lease:
    a replica that lost its lease (a zombie) changes nothing."""
    return [Job.id == job_id, Job.status == RUNNING, Job.locked_by == holder]


def _lease_expired(now: datetime):
    return or_(Job.locked_until.is_(None), Job.locked_until < now)


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
    """``replica_id`` names this process in the leases it takes; a lease lasts ``lease_seconds`` unless
    renewed. ``single_node`` (SQLite) means no other process shares the table, so at start every
    running job is known to be orphaned."""

    def __init__(
        self, sessions, *, replica_id: str = "local", lease_seconds: float = 60.0, single_node: bool = False
    ) -> None:
        super().__init__(sessions)
        self._finished: dict[str, asyncio.Event] = {}
        self._steps: dict[str, list[Step]] = {}
        self.replica_id = replica_id
        self.lease = timedelta(seconds=lease_seconds)
        self._single_node = single_node

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
        """Take a queued job, or a running one whose lease expired, under this replica's lease (one more
        attempt); None if a live replica holds it or it is done."""
        now = utcnow()
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(Job)
                .where(Job.id == job_id, or_(Job.status == QUEUED, (Job.status == RUNNING) & _lease_expired(now)))
                .values(
                    status=RUNNING,
                    attempts=Job.attempts + 1,
                    started_at=now,
                    updated_at=now,
                    locked_by=self.replica_id,
                    locked_until=now + self.lease,
                )
            )
            if result.rowcount != 1:
                return None
            return await session.get(Job, job_id)

    async def lease_state(self, job_id: str) -> tuple[str, datetime | None] | None:
        """(status, lease end) of a job, None if it does not exist."""
        async with self._sessions() as session:
            row = (await session.execute(select(Job.status, Job.locked_until).where(Job.id == job_id))).first()
        return (row.status, row.locked_until) if row else None

    async def renew(self, job_id: str) -> bool:
        """Extend this replica's lease on a running job; False if the lease is lost (or the job ended)."""
        now = utcnow()
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(Job).where(*held_by(job_id, self.replica_id)).values(locked_until=now + self.lease)
            )
        return result.rowcount == 1

    async def release_held(self) -> None:
        """End this replica's leases at once (a clean stop), so another replica may resume its jobs."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(Job).where(Job.status == RUNNING, Job.locked_by == self.replica_id).values(locked_until=utcnow())
            )

    # --- steps: one row per LLM call, written with the job's next change -------------------------

    def hold_step(self, step: Step) -> None:
        """Keep the steps row of a running job's LLM call until the job's next write (its end or a
        retry) instead of a write transaction per call: on SQLite writers take turns."""
        self._steps.setdefault(step.job_id, []).append(step)

    async def stage_steps(self, session: AsyncSession, job_id: str) -> None:
        """Add the job's held steps rows to ``session`` (before the UPDATE that counts them)."""
        steps = self._steps.pop(job_id, [])
        if steps:
            session.add_all(steps)
            await session.flush()

    def drop_steps(self, job_id: str) -> None:
        """Forget held steps rows of a job this replica no longer runs (shut down, or taken over)."""
        self._steps.pop(job_id, None)

    async def fail(self, job_id: str, error: str) -> bool:
        """End a job this replica holds as failed; False (and no change) if its lease was lost."""
        async with self._sessions.begin() as session:
            await self.stage_steps(session, job_id)
            result = await session.execute(
                update(Job)
                .where(*held_by(job_id, self.replica_id))
                .values(
                    status=FAILED,
                    error=error[:4000],
                    finished_at=utcnow(),
                    updated_at=utcnow(),
                    locked_until=None,
                    **usage_values(job_id),
                )
            )
        self.notify(job_id)
        return result.rowcount == 1

    async def fail_unqueued(self, job_id: str, error: str) -> None:
        """End a job that could not be queued, so that it never runs after its caller was told it failed."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == QUEUED)
                .values(status=FAILED, error=error[:4000], finished_at=utcnow(), updated_at=utcnow())
            )

    async def note_retry(self, job_id: str, error: str) -> None:
        """Record a transient failure; the job stays running and is attempted again."""
        async with self._sessions.begin() as session:
            await self.stage_steps(session, job_id)
            result = await session.execute(
                update(Job)
                .where(*held_by(job_id, self.replica_id))
                .values(attempts=Job.attempts + 1, error=error[:4000], updated_at=utcnow())
            )
        if result.rowcount != 1:
            raise LeaseLostError(f"job {job_id} was taken over by another replica")

    async def resumable(self) -> list[Job]:
        """Jobs to start with, oldest first: queued ones, and running ones whose replica is gone (lease
        expired). Leases of this replica's id are ours from before a restart; on a single node, all are."""
        now = utcnow()
        async with self._sessions.begin() as session:
            orphaned = update(Job).where(Job.status == RUNNING)
            if not self._single_node:
                orphaned = orphaned.where(Job.locked_by == self.replica_id)
            await session.execute(orphaned.values(locked_until=None))
            return list(
                await session.scalars(
                    select(Job)
                    .where(or_(Job.status == QUEUED, (Job.status == RUNNING) & _lease_expired(now)))
                    .order_by(Job.created_at)
                )
            )

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
