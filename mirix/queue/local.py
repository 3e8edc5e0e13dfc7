"""The in-process queue: a fixed pool of asyncio worker tasks.

Jobs of one user run strictly one after another, in the order they were enqueued; different users
run in parallel, up to the number of workers. A worker takes one job of a user per turn, so a
user with a long backlog does not starve the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from mirix.queue.base import JobHandler

log = logging.getLogger(__name__)


class LocalJobQueue:
    def __init__(self, workers: int) -> None:
        self._workers = max(1, workers)
        self._pending: dict[str, deque[str]] = {}
        self._ready: asyncio.Queue[str] = asyncio.Queue()
        self._scheduled: set[str] = set()  # user keys in _ready or being processed
        self._tasks: list[asyncio.Task[None]] = []
        self._handler: JobHandler | None = None

    async def start(self, handler: JobHandler) -> None:
        self._handler = handler
        self._tasks = [asyncio.create_task(self._work(), name=f"mirix-worker-{i}") for i in range(self._workers)]

    async def enqueue(self, job_id: str, user_key: str) -> None:
        self._pending.setdefault(user_key, deque()).append(job_id)
        if user_key not in self._scheduled:
            self._scheduled.add(user_key)
            self._ready.put_nowait(user_key)

    def depth(self) -> int:
        return sum(len(jobs) for jobs in self._pending.values())

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _work(self) -> None:
        assert self._handler is not None
        while True:
            user_key = await self._ready.get()
            jobs = self._pending[user_key]
            job_id = jobs.popleft()
            try:
                await self._handler(job_id)
            except asyncio.CancelledError:
                jobs.appendleft(job_id)  # not finished: it stays queued in the database too
                raise
            except Exception:
                # The handler records failures itself; anything escaping is a bug worth a trace,
                # and the job stays in the database for the next start to resume.
                log.exception("job %s crashed its worker turn", job_id)
            finally:
                if jobs:
                    self._ready.put_nowait(user_key)
                else:
                    del self._pending[user_key]
                    self._scheduled.discard(user_key)
