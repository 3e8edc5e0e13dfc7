"""Job queues: which worker runs which memory job, in order per user and in parallel across users."""

from mirix.queue.base import JobHandler, JobQueue, QueueUnavailableError
from mirix.queue.local import LocalJobQueue
from mirix.settings import Settings

__all__ = ["JobHandler", "JobQueue", "LocalJobQueue", "QueueUnavailableError", "create_queue"]


def create_queue(settings: Settings, replica_id: str) -> JobQueue:
    """The queue ``MIRIX_QUEUE`` names: in-process by default, Kafka to share jobs between replicas."""
    if settings.queue == "kafka":
        try:
            from mirix.queue.kafka import KafkaJobQueue, KafkaOptions
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise RuntimeError("MIRIX_QUEUE=kafka needs the kafka extra: pip install 'mirix-server[kafka]'") from exc
        return KafkaJobQueue(KafkaOptions.from_settings(settings, client_id=replica_id), settings.workers)
    return LocalJobQueue(settings.workers)
