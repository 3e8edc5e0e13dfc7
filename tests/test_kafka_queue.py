"""The Kafka job queue against a real Kafka-protocol broker (``MIRIX_TEST_KAFKA_BOOTSTRAP``)."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import murmur2
from pydantic import SecretStr
from sqlalchemy import select

from mirix.api.app import create_app
from mirix.db.models import Job
from mirix.queue.kafka import KafkaJobQueue, KafkaOptions
from mirix.schemas.jobs import AddMemoryRequest
from mirix.server.server import AsyncServer
from mirix.settings import Settings
from tests.fakes import FakeProvider
from tests.replicas import memory_model

PARTITIONS = 4


def partition_of(key: str) -> int:
    """Where the producer's default partitioner puts a key (Kafka's murmur2, like the Java client)."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % PARTITIONS


def keys_on_distinct_partitions(count: int) -> list[str]:
    keys: dict[int, str] = {}
    for i in range(1000):
        keys.setdefault(partition_of(f"org-1/user-{i}"), f"org-1/user-{i}")
        if len(keys) == count:
            return list(keys.values())
    raise AssertionError("not enough partitions")


class Harness:
    """Queues of one consumer group on a fresh topic, and what their handlers saw."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.topic = f"mirix-test-{uuid.uuid4().hex[:10]}"
        self.group = f"{self.topic}-workers"
        self.queues: list[KafkaJobQueue] = []

    def options(self, name: str) -> KafkaOptions:
        return KafkaOptions(
            bootstrap_servers=self.bootstrap,
            topic=self.topic,
            group_id=self.group,
            partitions=PARTITIONS,
            client_id=name,
            session_timeout_ms=3000,
            heartbeat_interval_ms=300,
        )

    async def queue(self, name: str, handler: Callable[[str], Awaitable[None]], workers: int = 8) -> KafkaJobQueue:
        queue = KafkaJobQueue(self.options(name), workers)
        await queue.start(handler)
        self.queues.append(queue)
        return queue

    async def committed(self) -> dict[int, int]:
        """The group's committed offsets per partition (read by a consumer that does not join it)."""
        reader = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=self.group, enable_auto_commit=False)
        await reader.start()
        try:
            offsets = {p: await reader.committed(TopicPartition(self.topic, p)) for p in range(PARTITIONS)}
        finally:
            await reader.stop()
        return {p: offset for p, offset in offsets.items() if offset is not None}

    async def until_committed(self, expected: dict[int, int]) -> None:
        async with asyncio.timeout(10):
            while await self.committed() != expected:  # noqa: ASYNC110 - the broker is polled
                await asyncio.sleep(0.05)

    async def close(self) -> None:
        for queue in self.queues:
            await queue.stop()


@pytest.fixture
async def kafka(kafka_bootstrap: str) -> AsyncIterator[Harness]:
    harness = Harness(kafka_bootstrap)
    yield harness
    await harness.close()


async def until(condition: Callable[[], bool], within: float = 20) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - conditions over several handlers' records
            await asyncio.sleep(0.02)


async def test_one_key_in_order_keys_in_parallel_and_offsets_committed(kafka: Harness):
    loop = asyncio.get_running_loop()
    spans: dict[str, tuple[float, float]] = {}

    async def handler(job_id: str) -> None:
        start = loop.time()
        await asyncio.sleep(random.uniform(0.005, 0.03))  # noqa: S311
        spans[job_id] = (start, loop.time())

    queue = await kafka.queue("replica-a", handler)
    keys = keys_on_distinct_partitions(3)
    jobs = {key: [f"job-{n}-{i}" for i in range(10)] for n, key in enumerate(keys)}
    for i in range(10):
        for key in keys:
            await queue.enqueue(jobs[key][i], key)
    await until(lambda: len(spans) == 30)

    for key_jobs in jobs.values():
        for before, after in zip(key_jobs, key_jobs[1:], strict=False):
            assert spans[before][1] <= spans[after][0], "one key's jobs run one at a time, in order"
    a, b = jobs[keys[0]], jobs[keys[1]]
    assert any(spans[x][0] < spans[y][1] and spans[y][0] < spans[x][1] for x in a for y in b), "keys in parallel"
    await until(lambda: queue.depth() == 0)
    expected = {partition_of(key): 10 for key in keys}
    await kafka.until_committed(expected)
    assert len(queue._consumer.partitions_for_topic(kafka.topic)) == PARTITIONS, "the topic was created"


async def test_an_offset_is_committed_only_after_its_job_ended(kafka: Harness):
    release = asyncio.Event()
    started: list[str] = []

    async def handler(job_id: str) -> None:
        started.append(job_id)
        if job_id == "slow":
            await release.wait()

    queue = await kafka.queue("replica-a", handler)
    key = "org-1/alice"
    for job_id in ("first", "slow", "third"):
        await queue.enqueue(job_id, key)
    await until(lambda: started == ["first", "slow"])
    await asyncio.sleep(0.3)
    assert await kafka.committed() == {partition_of(key): 1}, "only the finished job's offset"
    assert started == ["first", "slow"], "the next job of the key waits"

    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
    await producer.start()
    await producer.send_and_wait(kafka.topic, b"not json", key=key.encode())  # skipped, not a blocker
    await producer.stop()
    await queue.enqueue("last", key)
    release.set()
    await until(lambda: started == ["first", "slow", "third", "last"])
    await kafka.until_committed({partition_of(key): 5})


async def test_a_message_is_redelivered_when_its_consumer_dies_before_committing(kafka: Harness):
    seen_a: list[str] = []
    seen_b: list[str] = []

    async def handler_a(job_id: str) -> None:
        seen_a.append(job_id)
        if job_id == "stuck":
            await asyncio.Event().wait()  # never finishes: its replica dies in the middle of it

    async def handler_b(job_id: str) -> None:
        seen_b.append(job_id)

    a = await kafka.queue("replica-a", handler_a)
    key = "org-1/bob"
    for job_id in ("done", "stuck", "after"):
        await a.enqueue(job_id, key)
    await until(lambda: seen_a == ["done", "stuck"])
    await kafka.queue("replica-b", handler_b)
    await a.stop()  # dies: no commit for "stuck"; the group hands its partition over
    kafka.queues.remove(a)
    await until(lambda: seen_b[-2:] == ["stuck", "after"])
    assert "done" not in seen_b, "committed work is not delivered again"
    # Replica B joining moved partitions around: A may have been handed "stuck" again (the job
    # runner then waits on the job's lease), but it never got past it.
    assert "after" not in seen_a and seen_a.count("done") == 1
    await kafka.until_committed({partition_of(key): 3})


async def test_partitions_are_shared_by_the_group(kafka: Harness):
    ran: dict[str, set[str]] = {"replica-a": set(), "replica-b": set()}

    def handler(name: str) -> Callable[[str], Awaitable[None]]:
        async def handle(job_id: str) -> None:
            ran[name].add(job_id)

        return handle

    a = await kafka.queue("replica-a", handler("replica-a"))
    b = await kafka.queue("replica-b", handler("replica-b"))
    await until(lambda: a._consumer.assignment() and b._consumer.assignment())
    await until(lambda: len(a._consumer.assignment()) + len(b._consumer.assignment()) == PARTITIONS)
    keys = keys_on_distinct_partitions(PARTITIONS)
    for i, key in enumerate(keys * 3):
        await (a if i % 2 else b).enqueue(f"job-{i}", key)
    await until(lambda: len(ran["replica-a"] | ran["replica-b"]) == 3 * PARTITIONS)
    assert ran["replica-a"] and ran["replica-b"], "both replicas took a share"
    assert not ran["replica-a"] & ran["replica-b"], "and no job ran twice"
    assert {tp.partition for tp in a._consumer.assignment() | b._consumer.assignment()} == set(range(PARTITIONS))
    assert not a._consumer.assignment() & b._consumer.assignment()
    assert isinstance(next(iter(a._consumer.assignment())), TopicPartition)


def kafka_settings(settings: Settings, bootstrap: str) -> Settings:
    topic = f"mirix-test-{uuid.uuid4().hex[:10]}"
    return settings.model_copy(
        update={
            "queue": "kafka",
            "kafka_bootstrap_servers": bootstrap,
            "kafka_topic": topic,
            "kafka_group_id": f"{topic}-workers",
            "kafka_partitions": 2,
            "kafka_heartbeat_interval_ms": 300,
        }
    )


async def test_a_server_with_the_kafka_queue_runs_memory_jobs(settings: Settings, kafka_bootstrap: str, tenant):
    async with FakeProvider(responder=memory_model) as fake:
        llm = {"llm_model": "m", "llm_endpoint": fake.openai_base_url, "llm_api_key": SecretStr("k")}
        server = await AsyncServer.start(kafka_settings(settings, kafka_bootstrap).model_copy(update=llm))
        try:
            assert isinstance(server.queue, KafkaJobQueue)
            await server.start_workers()
            request = AddMemoryRequest(user_id="alice", messages=[{"role": "user", "content": "I adopted Rex."}])
            jobs = [await server.add_memory(tenant.actor, request) for _ in range(3)]
            for job in jobs:
                finished = await server.jobs.wait(tenant.actor, job.id, 30)
                assert finished.status == "succeeded" and finished.locked_by == server.jobs.replica_id
        finally:
            await server.close()


async def test_a_job_that_cannot_be_queued_fails_at_once(settings: Settings, kafka_bootstrap: str, tenant):
    server = await AsyncServer.start(kafka_settings(settings, kafka_bootstrap).model_copy(update={"llm_model": "m"}))
    try:  # its queue was never started: as good as an unreachable broker
        transport = httpx.ASGITransport(app=create_app(server=server))
        async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=tenant.headers) as http:
            body = {"user_id": "alice", "messages": [{"role": "user", "content": "I swam."}]}
            response = await http.post("/memory/add", json=body)
        assert response.status_code == 503 and "queue" in response.json()["detail"]
        async with server.sessions() as session:
            job = await session.scalar(select(Job))
        assert job.status == "failed" and "queue" in job.error, "it never runs after the caller was told it failed"
    finally:
        await server.close()
