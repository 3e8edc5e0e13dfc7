"""The queue interface. The jobs table is the source of truth; a queue only says what to run next."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from mirix.errors import ServiceUnavailableError


class QueueUnavailableError(ServiceUnavailableError):
    """The job could not be queued (the broker is unreachable): the caller ends the job as failed."""


#: Runs one job to its end (success or recorded failure); raising means "try again later".
JobHandler = Callable[[str], Awaitable[None]]


class JobQueue(Protocol):
    async def start(self, handler: JobHandler) -> None:
        """Begin taking jobs and passing their ids to ``handler``."""

    async def enqueue(self, job_id: str, user_key: str) -> None:
        """Schedule a job; jobs with the same ``user_key`` run one at a time, in order. Raises
        ``QueueUnavailableError`` when the job could not be queued."""

    async def stop(self) -> None:
        """Stop taking jobs and wait for the ones running to finish."""

    def depth(self) -> int:
        """Jobs waiting to run in this process."""
