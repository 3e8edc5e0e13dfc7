"""Job queues: which worker runs which memory job, in order per user and in parallel across users."""

from mirix.queue.base import JobHandler, JobQueue
from mirix.queue.local import LocalJobQueue

__all__ = ["JobHandler", "JobQueue", "LocalJobQueue"]
