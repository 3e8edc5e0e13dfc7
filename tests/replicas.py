"""Several `mirix serve` processes sharing one PostgreSQL database and one Kafka topic: the harness of
tests/test_replicas.py and bench/replicas.py."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.fakes import RecordedRequest, Reply

ASSIGNED = re.compile(r"assigned (\d+) Kafka partitions")


def memory_model(request: RecordedRequest) -> Reply:
    """A stand-in model: routes to episodic + semantic; each agent stores one item naming what was said."""
    said = re.findall(r"I (.+?)(?:\.|$)", request.prompt_text.split("The conversation:")[-1]) or ["talked"]
    if "trigger_memory_update" in request.tools:
        return Reply.tool_call("trigger_memory_update", {"memory_types": ["episodic", "semantic"]})
    if "episodic_memory_insert" in request.tools:
        item = {"summary": f"User {said[0]}", "details": f"They {said[0]}.", "actor": "user", "event_type": "activity"}
        return Reply.tool_call("episodic_memory_insert", {"items": [item]})
    if "semantic_memory_insert" in request.tools:
        item = {"name": said[0][:60], "summary": f"The user {said[0]}", "details": said[0], "source": "conversation"}
        return Reply.tool_call("semantic_memory_insert", {"items": [item]})
    return Reply.tool_call("finish_memory_update", {})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Cluster:
    """What the replicas share: the database, the broker (a fresh topic and group), Redis if given."""

    database_url: str
    kafka_bootstrap: str
    data_root: Path
    redis_url: str | None = None
    #: An OpenAI-compatible embedding endpoint (the fake provider's); None: the local model in each replica.
    embedding_url: str | None = None
    partitions: int = 8
    workers: int = 32
    lease_seconds: float = 2.0
    renew_seconds: float = 0.5
    jwt_secret: str = "replica-test-secret-" + "x" * 32
    extra_env: dict[str, str] = field(default_factory=dict)
    name: str = field(default_factory=lambda: f"mirix-replicas-{uuid.uuid4().hex[:10]}")

    def env(self, replica: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MIRIX_")}
        env.update(
            MIRIX_DATA_DIR=str(self.data_root / replica),
            MIRIX_PG_URI=self.database_url,
            MIRIX_AUTO_MIGRATE="false",
            MIRIX_BOOTSTRAP="false",
            MIRIX_JWT_SECRET_KEY=self.jwt_secret,
            MIRIX_REPLICA_ID=replica,
            MIRIX_WORKERS=str(self.workers),
            MIRIX_QUEUE="kafka",
            MIRIX_KAFKA_BOOTSTRAP_SERVERS=self.kafka_bootstrap,
            MIRIX_KAFKA_TOPIC=self.name,
            MIRIX_KAFKA_GROUP_ID=f"{self.name}-workers",
            MIRIX_KAFKA_PARTITIONS=str(self.partitions),
            # A dead replica's partitions move on after 3 s; its jobs' leases end 2 s after it died.
            MIRIX_KAFKA_SESSION_TIMEOUT_MS="3000",
            MIRIX_KAFKA_HEARTBEAT_INTERVAL_MS="300",
            MIRIX_JOB_LEASE_SECONDS=str(self.lease_seconds),
            MIRIX_JOB_LEASE_RENEW_SECONDS=str(self.renew_seconds),
            MIRIX_LOG_LEVEL="INFO",
        )
        if self.embedding_url:
            env.update(
                MIRIX_EMBEDDING_ENDPOINT_TYPE="openai",
                MIRIX_EMBEDDING_ENDPOINT=self.embedding_url,
                MIRIX_EMBEDDING_MODEL="fake-embedding",
                MIRIX_EMBEDDING_API_KEY="k",
            )
        if self.redis_url:
            env.update(MIRIX_REDIS_URL=self.redis_url, MIRIX_REDIS_PREFIX=f"{self.name}:")
        env.update(self.extra_env)
        return env


class Replica:
    """One `mirix serve` process; its log lines are kept for assertions and failure reports."""

    def __init__(self, cluster: Cluster, name: str) -> None:
        self.cluster = cluster
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.lines: list[str] = []
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> Replica:
        (self.cluster.data_root / self.name).mkdir(parents=True, exist_ok=True)
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mirix.cli",
            "serve",
            "--port",
            str(self.port),
            env=self.cluster.env(self.name),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._read())
        async with httpx.AsyncClient() as client:
            for _ in range(1200):
                if self.process.returncode is not None:
                    break
                try:
                    if (await client.get(f"{self.url}/health")).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"replica {self.name} did not start:\n{self.log_tail()}")

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for line in self.process.stdout:
            self.lines.append(line.decode(errors="replace").rstrip())

    @property
    def partitions(self) -> int:
        """Partitions of the topic assigned to this replica at its latest rebalance."""
        counts = [int(m.group(1)) for line in self.lines if (m := ASSIGNED.search(line))]
        return counts[-1] if counts else 0

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.lines[-lines:])

    def kill(self) -> None:
        """Die at once, mid-whatever: no shutdown, no commit, no lease released."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> int:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        return self.process.returncode


async def start_replicas(cluster: Cluster, names: Iterable[str]) -> list[Replica]:
    """Start the replicas side by side and wait until the group has shared the partitions among them."""
    replicas = [Replica(cluster, name) for name in names]
    await asyncio.gather(*(replica.start() for replica in replicas))

    def settled() -> bool:
        return all(r.partitions for r in replicas) and sum(r.partitions for r in replicas) == cluster.partitions

    for _ in range(300):
        if settled():
            return replicas
        await asyncio.sleep(0.1)
    raise AssertionError("the consumer group did not settle:\n" + "\n".join(r.log_tail() for r in replicas))
