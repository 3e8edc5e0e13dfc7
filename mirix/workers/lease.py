"""Leases on running jobs, so several replicas can share one jobs table.

A replica claims a job for a limited time and renews the lease while it works. If the replica dies,
its lease expires and another replica may claim the job; if it only stalls past its lease, it finds
out at its next renewal (its run is cancelled) or, at the latest, when its final UPDATE matches no
row (the pipeline then rolls its writes back). So a job's writes are committed once, whoever ran it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Coroutine
from typing import Any

from mirix.db.models import Job
from mirix.db.types import utcnow
from mirix.services.jobs import FINISHED, RUNNING, JobManager

log = logging.getLogger(__name__)

#: How a run ended when this replica lost the job to another one before finishing it.
ABANDONED = "abandoned"


async def acquire(jobs: JobManager, job_id: str, poll_seconds: float) -> Job | None:
    """Claim the job; None when it is finished (or unknown). While another live replica holds it, wait:
    the job ends there, or that replica died and its lease runs out. Waiting rather than skipping keeps
    a redelivered message (Kafka after a rebalance) in its place in the user's order."""
    while True:
        job = await jobs.claim(job_id)
        if job is not None:
            return job
        state = await jobs.lease_state(job_id)
        if state is None or state[0] in FINISHED:
            return None
        status, locked_until = state
        if status == RUNNING and locked_until is not None:
            remaining = (locked_until - utcnow()).total_seconds()
            await asyncio.sleep(min(max(remaining, 0.0) + 0.05, poll_seconds))
        else:
            await asyncio.sleep(0.05)  # another worker claimed it between our two statements


async def hold_lease(jobs: JobManager, job_id: str, work: Coroutine[Any, Any, str], renew_seconds: float) -> str:
    """Run ``work`` while renewing the job's lease every ``renew_seconds``; if the lease is lost,
    cancel it and return ``ABANDONED`` (the replica that took the job over finishes it)."""
    task = asyncio.create_task(work)
    lost = False

    async def keep() -> None:
        nonlocal lost
        while True:
            await asyncio.sleep(renew_seconds)
            try:
                held = await jobs.renew(job_id)
            except Exception:  # noqa: BLE001 - a database hiccup: try again before the lease runs out
                log.warning("could not renew the lease of job %s", job_id, exc_info=True)
                continue
            if not held and not task.done():
                state = await jobs.lease_state(job_id)
                if state is not None and state[0] in FINISHED:
                    return  # it was this run's own commit that ended the lease
                lost = True
                log.warning("job %s: lease lost to another replica; abandoning this run", job_id)
                task.cancel()
                return

    keeper = asyncio.create_task(keep())
    try:
        return await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if lost and task.cancelled() and (current is None or not current.cancelling()):
            return ABANDONED
        raise
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)


def default_replica_id() -> str:
    """Unique per process, readable in the jobs table: host, pid and a random suffix."""
    return f"{socket.gethostname()[:80]}-{os.getpid()}-{secrets.token_hex(3)}"
