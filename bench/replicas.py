"""Scale-out benchmark: memory-job throughput of one replica against two replicas sharing PostgreSQL
and a Kafka topic (MIRIX_QUEUE=kafka), on the fake-provider job of bench/write_throughput.py.

For each replica count, a fresh PostgreSQL database (migrated, dropped afterwards) and a fresh topic
and consumer group; `mirix serve` processes started as in production, the consumer group settled
before the clock starts. N adds spread over U users are sent to the replicas' APIs in turn (at most
C in flight); the clock stops when the jobs table shows every job finished. The fake LLM (OpenAI
wire format, fixed latency; 1 routing call + 2 memory-agent calls per add) runs in this process.

Everything shares this machine: the replicas, PostgreSQL, the broker, the fake provider and the load
generator. The CPU seconds each took are printed, since on a 2-core machine the cores are the limit
that a second replica runs into.

Run:  .venv/bin/python bench/replicas.py --pg-uri postgresql://postgres@127.0.0.1:PORT/postgres \\
          --kafka 127.0.0.1:PORT [--adds 400 --users 64 --latency-ms 300 --replicas 1,2]
(`bash scripts/dev-services.sh` starts PostgreSQL, Redis and the broker and prints their addresses.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from mirix.db.migrate import upgrade  # noqa: E402
from mirix.db.models import Job  # noqa: E402
from mirix.server.server import AsyncServer  # noqa: E402
from mirix.settings import Settings  # noqa: E402
from tests.fakes import FakeProvider  # noqa: E402
from tests.replicas import Cluster, Replica, memory_model, start_replicas  # noqa: E402
from tests.support import create_tenant  # noqa: E402


async def _admin(pg_uri: str, sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(pg_uri)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU ticks of the whole machine so far, every core (Linux /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, its children that ended and those still running (Linux
    /proc; PostgreSQL's postmaster: every backend)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = children.read_text().split() if children.exists() else []
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK") + sum(cpu_seconds(int(k)) for k in kids)


async def run(args: argparse.Namespace, replicas: int, fake: FakeProvider) -> dict:
    name = f"mirix_bench_{uuid.uuid4().hex[:10]}"
    await _admin(args.pg_uri, f'CREATE DATABASE "{name}"')
    database_url = urlunsplit(urlsplit(args.pg_uri)._replace(path=f"/{name}"))
    await upgrade(database_url.replace("postgresql://", "postgresql+asyncpg://", 1))
    settings = Settings(_env_file=None, database_url=database_url, bootstrap=False, jwt_secret_key="b" * 40)
    server = await AsyncServer.start(settings)
    started: list[Replica] = []
    try:
        tenant = await create_tenant(server, "bench")
        cluster = Cluster(
            database_url=database_url,
            kafka_bootstrap=args.kafka,
            data_root=Path(tempfile.mkdtemp(prefix="mirix-replicas-bench-")),
            redis_url=args.redis_url,
            embedding_url=fake.openai_base_url if args.embeddings == "remote" else None,
            partitions=args.partitions,
            workers=args.workers,
            lease_seconds=60,
            renew_seconds=15,
        )
        started = await start_replicas(cluster, [f"replica-{i}" for i in range(replicas)])
        # Idle connections expire before uvicorn's 5 s keep-alive ends them: reusing one it just closed fails.
        clients = [
            httpx.AsyncClient(
                base_url=r.url,
                headers=tenant.headers,
                timeout=120,
                limits=httpx.Limits(max_connections=64, keepalive_expiry=1),
            )
            for r in started
        ]
        config = {
            "llm_config": {
                "model": "bench-model",
                "model_endpoint_type": "openai",
                "model_endpoint": fake.openai_base_url,
                "api_key": "bench",
            }
        }
        (await clients[0].post("/agents/meta/initialize", json={"config": config})).raise_for_status()
        cpu_before = {r.name: cpu_seconds(r.process.pid) for r in started}
        pg_before = cpu_seconds(args.pg_pid) if args.pg_pid else 0.0
        own_before = time.process_time()
        machine_before = machine_busy()
        gate = asyncio.Semaphore(args.concurrency)
        t0 = time.perf_counter()

        async def add(i: int) -> None:
            body = {
                "user_id": f"user-{i % args.users}",
                "messages": [
                    {"role": "user", "content": f"I went hiking on trail number {i}."},
                    {"role": "assistant", "content": "Sounds lovely!"},
                ],
            }
            async with gate:
                (await clients[i % len(clients)].post("/memory/add", json=body)).raise_for_status()

        await asyncio.gather(*(add(i) for i in range(args.adds)))
        acknowledged = time.perf_counter() - t0
        while True:
            async with server.sessions() as session:
                done = await session.scalar(
                    select(func.count()).select_from(Job).where(Job.status.in_(("succeeded", "failed")))
                )
            if done >= args.adds:
                break
            await asyncio.sleep(0.1)
        elapsed = time.perf_counter() - t0
        machine_after = machine_busy()
        async with server.sessions() as session:
            rows = (await session.execute(select(Job.status, Job.locked_by, Job.llm_calls))).all()
            spans = (await session.execute(select(Job.started_at, Job.finished_at))).all()
        durations = sorted((end - start).total_seconds() * 1000 for start, end in spans)
        for client in clients:
            await client.aclose()
        return {
            "replicas": replicas,
            "adds": args.adds,
            "users": args.users,
            "seconds": elapsed,
            "acknowledged_seconds": acknowledged,
            "adds_per_second": args.adds / elapsed,
            "failed": sum(status == "failed" for status, _, _ in rows),
            "llm_calls_per_add": sum(calls for _, _, calls in rows) / len(rows),
            "job_ms_median": statistics.median(durations),
            "job_ms_p90": durations[int(len(durations) * 0.9)],
            "jobs_per_replica": {r.name: sum(by == r.name for _, by, _ in rows) for r in started},
            # Share of all cores busy during the run, whoever used them (this benchmark or anything else).
            "machine_busy": (machine_after[0] - machine_before[0]) / (machine_after[1] - machine_before[1]),
            "cpu_seconds": {
                **{r.name: cpu_seconds(r.process.pid) - cpu_before[r.name] for r in started},
                "bench (fake LLM + load)": time.process_time() - own_before,
                **({"postgres": cpu_seconds(args.pg_pid) - pg_before} if args.pg_pid else {}),
            },
        }
    except BaseException:
        for replica in started:
            print(f"--- {replica.name} (exit {replica.process.returncode}):\n{replica.log_tail(30)}", file=sys.stderr)
        raise
    finally:
        for replica in started:
            await replica.stop()
        await server.close()
        await _admin(args.pg_uri, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-uri", default=os.environ.get("MIRIX_TEST_PG_URI"))
    parser.add_argument("--kafka", default=os.environ.get("MIRIX_TEST_KAFKA_BOOTSTRAP"))
    parser.add_argument("--redis-url", default=os.environ.get("MIRIX_TEST_REDIS_URL"))
    parser.add_argument("--adds", type=int, default=400)
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--partitions", type=int, default=32)
    parser.add_argument("--workers", type=int, default=32, help="MIRIX_WORKERS of each replica")
    parser.add_argument("--concurrency", type=int, default=32, help="adds in flight from the load generator")
    parser.add_argument("--latency-ms", type=float, default=300)
    parser.add_argument("--replicas", default="1,2", help="replica counts to compare, in order")
    parser.add_argument(
        "--embeddings",
        choices=("remote", "local"),
        default="remote",
        help="remote: the fake provider embeds (OpenAI wire format), so the replicas' CPU goes to the server's "
        "own work; local: each replica runs the ONNX model, whose threads already use every core",
    )
    parser.add_argument("--pg-pid", type=int, help="PostgreSQL's postmaster, to count its CPU time too")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not args.pg_uri or not args.kafka:
        parser.error("needs --pg-uri and --kafka (or MIRIX_TEST_PG_URI / MIRIX_TEST_KAFKA_BOOTSTRAP)")

    results: dict = {"latency_ms": args.latency_ms, "cores": os.cpu_count(), "runs": [], "load_before": os.getloadavg()}
    async with FakeProvider(responder=memory_model, latency=args.latency_ms / 1000) as fake:
        for count in (int(n) for n in args.replicas.split(",")):
            results["runs"].append(await run(args, count, fake))
    results["load_average"] = os.getloadavg()

    print(
        f"fake LLM latency {args.latency_ms:.0f} ms, {args.adds} adds over {args.users} users, "
        f"{args.partitions} partitions, {args.embeddings} embeddings, {os.cpu_count()} cores shared by everything; "
        f"load average before {results['load_before'][0]:.2f}"
    )
    for row in results["runs"]:
        cpu = ", ".join(f"{k} {v:.1f}" for k, v in row["cpu_seconds"].items())
        print(
            f"{row['replicas']} replica(s): {row['seconds']:.1f} s, {row['adds_per_second']:.2f} adds/s "
            f"(all acknowledged after {row['acknowledged_seconds']:.1f} s), failed {row['failed']}, "
            f"{row['llm_calls_per_add']:.2f} LLM calls/add, job median {row['job_ms_median']:.0f} ms "
            f"(p90 {row['job_ms_p90']:.0f}), jobs per replica {row['jobs_per_replica']}; "
            f"CPU s: {cpu}; machine busy {row['machine_busy']:.0%}"
        )
    if len(results["runs"]) >= 2:
        first, last = results["runs"][0], results["runs"][-1]
        results["speedup"] = last["adds_per_second"] / first["adds_per_second"]
        print(f"speed-up of {last['replicas']} replicas over {first['replicas']}: {results['speedup']:.2f}x")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
