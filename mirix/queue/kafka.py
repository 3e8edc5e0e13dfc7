"""The Kafka queue: replicas of the server share the jobs through one topic and one consumer group.

- A message is the job id and its user key, keyed by the user key: one user's jobs land in one
  partition, in the order they were added. The jobs table stays the source of truth.
- Each partition is worked through one message at a time, in order; different partitions run
  concurrently, at most ``workers`` jobs at once in this process. A partition with records waiting
  here is paused, so a replica holds at most one fetched batch per partition.
- A message's offset is committed only after its job ended (succeeded or failed, recorded in the
  jobs table). A replica that dies mid-job commits nothing: after the group rebalances, another
  replica gets the message again, waits for the dead replica's lease on the job to expire and runs
  it. A job that already ended is skipped, so a message delivered twice does no harm.
- When a partition is taken away (rebalance), the job running from it may finish here; its offset
  is then committed by the new owner, which waits on the job's lease and skips it once it ended.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from aiokafka.helpers import create_ssl_context

from mirix.queue.base import JobHandler, QueueUnavailableError
from mirix.settings import Settings

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36
RETRY_SECONDS = 1.0


@dataclass
class KafkaOptions:
    bootstrap_servers: str
    topic: str
    group_id: str
    partitions: int = 32
    replication_factor: int = 1
    client_id: str = "mirix"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_password: str | None = None
    idempotent_producer: bool = False
    session_timeout_ms: int = 10000
    heartbeat_interval_ms: int = 3000

    @classmethod
    def from_settings(cls, settings: Settings, client_id: str) -> KafkaOptions:
        s = settings
        return cls(
            bootstrap_servers=s.kafka_bootstrap_servers,
            topic=s.kafka_topic,
            group_id=s.kafka_group_id,
            partitions=s.kafka_partitions,
            replication_factor=s.kafka_replication_factor,
            client_id=client_id,
            security_protocol=s.kafka_security_protocol,
            sasl_mechanism=s.kafka_sasl_mechanism,
            sasl_username=s.kafka_sasl_username,
            sasl_password=s.kafka_sasl_password.get_secret_value() if s.kafka_sasl_password else None,
            ssl_cafile=s.kafka_ssl_cafile,
            ssl_certfile=s.kafka_ssl_certfile,
            ssl_keyfile=s.kafka_ssl_keyfile,
            ssl_password=s.kafka_ssl_password.get_secret_value() if s.kafka_ssl_password else None,
            idempotent_producer=s.kafka_idempotent_producer,
            session_timeout_ms=s.kafka_session_timeout_ms,
            heartbeat_interval_ms=s.kafka_heartbeat_interval_ms,
        )

    def connection(self) -> dict[str, Any]:
        """Arguments every aiokafka client (admin, producer, consumer) takes alike."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
        }
        if self.security_protocol in ("SSL", "SASL_SSL"):
            options["ssl_context"] = create_ssl_context(
                cafile=self.ssl_cafile, certfile=self.ssl_certfile, keyfile=self.ssl_keyfile, password=self.ssl_password
            )
        if self.security_protocol.startswith("SASL_"):
            options.update(
                sasl_mechanism=self.sasl_mechanism or "PLAIN",
                sasl_plain_username=self.sasl_username,
                sasl_plain_password=self.sasl_password,
            )
        return options


@dataclass(eq=False)
class _Partition:
    """Records fetched from one partition and not yet finished; ``revoked`` once it is taken away."""

    tp: TopicPartition
    backlog: deque[ConsumerRecord] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None
    revoked: bool = False


class KafkaJobQueue:
    def __init__(self, options: KafkaOptions, workers: int) -> None:
        self._options = options
        self._slots = asyncio.Semaphore(max(1, workers))
        self._handler: JobHandler | None = None
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: dict[TopicPartition, _Partition] = {}
        self._fetching: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, handler: JobHandler) -> None:
        self._handler = handler
        await self._ensure_topic()
        o = self._options
        self._producer = AIOKafkaProducer(
            **o.connection(),
            acks="all",
            enable_idempotence=o.idempotent_producer,
            key_serializer=str.encode,
            value_serializer=lambda value: json.dumps(value).encode(),
        )
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            **o.connection(),
            group_id=o.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=o.session_timeout_ms,
            heartbeat_interval_ms=o.heartbeat_interval_ms,
        )
        self._consumer.subscribe([o.topic], listener=_Revocations(self))
        try:
            await self._consumer.start()
        except BaseException:
            await self._producer.stop()
            raise
        self._fetching = asyncio.create_task(self._fetch(), name="mirix-kafka-fetch")

    async def enqueue(self, job_id: str, user_key: str) -> None:
        if self._producer is None:
            raise QueueUnavailableError("the job queue is not running")
        try:
            await self._producer.send_and_wait(
                self._options.topic, {"job_id": job_id, "user_key": user_key}, key=user_key
            )
        except KafkaError as exc:
            raise QueueUnavailableError(f"the job queue (Kafka) is unavailable: {exc}") from exc

    def depth(self) -> int:
        return sum(len(p.backlog) for p in self._partitions.values())

    async def stop(self) -> None:
        """Stop at once: running jobs are interrupted and their messages stay uncommitted, so the group
        hands them to another replica (the server releases this replica's leases right after)."""
        tasks = [t for t in (self._fetching, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._fetching = None
        self._partitions.clear()
        if self._consumer is not None:
            await self._consumer.stop()  # leaves the group: its partitions move on without a timeout
            self._consumer = None
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def _ensure_topic(self) -> None:
        o = self._options
        admin = AIOKafkaAdminClient(**o.connection())
        await admin.start()
        try:
            if o.topic in await admin.list_topics():
                return
            response = await admin.create_topics([NewTopic(o.topic, o.partitions, o.replication_factor)])
            for _topic, code, message in response.topic_errors:
                if code not in (0, TOPIC_ALREADY_EXISTS):  # another replica may have just created it
                    raise KafkaError(f"cannot create topic {o.topic}: error {code} {message}")
            log.info("created Kafka topic %s with %d partitions", o.topic, o.partitions)
        finally:
            await admin.close()

    async def _fetch(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=1000)
            except KafkaError:
                log.warning("Kafka fetch failed; retrying", exc_info=True)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            for tp, records in batches.items():
                partition = self._partitions.get(tp)
                if partition is None:
                    partition = self._partitions[tp] = _Partition(tp)
                partition.backlog.extend(records)
                consumer.pause(tp)  # resumed once this batch is worked through
                if partition.task is None:
                    partition.task = asyncio.create_task(self._work(partition), name=f"mirix-kafka-{tp.partition}")
                    # Tracked apart from the partition: a revoked partition's job may still be finishing.
                    self._tasks.add(partition.task)
                    partition.task.add_done_callback(self._tasks.discard)

    async def _work(self, partition: _Partition) -> None:
        """Run the partition's jobs one after another, committing each offset after its job ended."""
        assert self._consumer is not None
        try:
            while partition.backlog and not partition.revoked:
                record = partition.backlog[0]
                job_id = _job_id(record)
                if job_id is not None:
                    await self._run(partition, job_id)
                if partition.revoked:
                    return
                partition.backlog.popleft()
                await self._commit(partition, record.offset + 1)
            if not partition.revoked:
                # No await since the loop's last check: nothing can have been fetched for it meanwhile.
                self._consumer.resume(partition.tp)
        finally:
            partition.task = None

    async def _run(self, partition: _Partition, job_id: str) -> None:
        """Run the handler until it returns (the job ended, here or elsewhere); a failure to reach the
        database is retried in place, keeping the partition's order."""
        assert self._handler is not None
        while not partition.revoked:
            try:
                async with self._slots:
                    await self._handler(job_id)
                return
            except Exception:
                log.exception("job %s could not be run; retrying", job_id)
                await asyncio.sleep(RETRY_SECONDS)

    async def _commit(self, partition: _Partition, offset: int) -> None:
        assert self._consumer is not None
        try:
            await self._consumer.commit({partition.tp: offset})
        except KafkaError as exc:
            # Lost the partition meanwhile: its new owner gets the message again and skips the ended job.
            log.warning("could not commit %s@%d: %s", partition.tp, offset, exc)

    def _revoke(self, revoked: set[TopicPartition]) -> None:
        for tp in revoked:
            partition = self._partitions.pop(tp, None)
            if partition is not None:
                partition.revoked = True
                partition.backlog.clear()


class _Revocations(ConsumerRebalanceListener):
    def __init__(self, queue: KafkaJobQueue) -> None:
        self._queue = queue

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self._queue._revoke(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("assigned %d Kafka partitions", len(assigned))


def _job_id(record: ConsumerRecord) -> str | None:
    try:
        job_id = json.loads(record.value)["job_id"]
    except (ValueError, KeyError, TypeError):
        log.error("skipping malformed message at %s/%d@%d", record.topic, record.partition, record.offset)
        return None
    return job_id if isinstance(job_id, str) else None
