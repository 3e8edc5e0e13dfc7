"""Write-path benchmark: LLM calls per add, job throughput, and how fast an add is acknowledged.

A real server process runs against a scripted fake LLM provider (real HTTP, OpenAI wire format)
that answers every call after a fixed latency (default 300 ms). The fake routes each conversation
to two memory types (episodic and semantic), so an add costs 1 routing call + 2 agent calls with
two LLM round trips on its critical path.

Measured side by side in one run:
  1. throughput: N adds spread over U users, from the first request until the last job finished,
     with the configured worker count; and the same with one worker (one add at a time, as the
     original MIRIX processes a user's adds) on a smaller sample — the ratio is reported;
  2. acknowledgement: /memory/add at concurrency C against /health at the same concurrency.

Run:  .venv/bin/python bench/write_throughput.py [--adds 200 --users 20 --latency-ms 300 --workers 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes import FakeProvider, RecordedRequest, Reply  # noqa: E402


def scripted_model(request: RecordedRequest) -> Reply:
    """Route to episodic + semantic; each memory agent stores one item about what was said."""
    said = re.findall(r"I (.+?)(?:\.|$)", request.prompt_text.split("The conversation:")[-1]) or ["talked"]
    if "trigger_memory_update" in request.tools:
        return Reply.tool_call("trigger_memory_update", {"memory_types": ["episodic", "semantic"]})
    if "episodic_memory_insert" in request.tools:
        return Reply.tool_call(
            "episodic_memory_insert",
            {
                "items": [
                    {
                        "summary": f"User {said[0]}",
                        "details": f"The user said they {said[0]}.",
                        "actor": "user",
                        "event_type": "activity",
                    }
                ]
            },
        )
    if "semantic_memory_insert" in request.tools:
        return Reply.tool_call(
            "semantic_memory_insert",
            {
                "items": [
                    {
                        "name": said[0][:40],
                        "summary": f"Something the user {said[0]}",
                        "details": said[0],
                        "source": "conversation",
                    }
                ]
            },
        )
    return Reply.tool_call("finish_memory_update", {})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


POLL_SECONDS = 1.0


class Server:
    """A `mirix serve` subprocess on a fresh SQLite data directory."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.port = free_port()
        self.data_dir = Path(tempfile.mkdtemp(prefix="mirix-write-bench-"))
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Server:
        env = {
            **os.environ,
            "MIRIX_DATA_DIR": str(self.data_dir),
            "MIRIX_WORKERS": str(self.workers),
            "MIRIX_LOG_LEVEL": os.environ.get("BENCH_SERVER_LOG_LEVEL", "WARNING"),
        }
        env.pop("MIRIX_PG_URI", None)
        self._log = (self.data_dir / "server.log").open("w")  # warnings and errors
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mirix.cli",
            "serve",
            "--port",
            str(self.port),
            env=env,
            stdout=self._log,
            stderr=asyncio.subprocess.STDOUT,
        )
        async with httpx.AsyncClient() as client:
            for _ in range(600):
                try:
                    if (await client.get(f"{self.url}/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
        self.key = (self.data_dir / "api_key").read_text().strip()
        return self

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server process has used so far, from /proc."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def __aexit__(self, exc_type: object, *exc: object) -> None:
        assert self.process is not None
        if self.process.returncode is not None:
            print(f"the server had exited with {self.process.returncode}", file=sys.stderr)
        else:
            self.process.send_signal(signal.SIGINT)
            await asyncio.wait_for(self.process.wait(), 30)
        self._log.close()
        if exc_type is None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        else:
            print(f"server data and log kept in {self.data_dir}", file=sys.stderr)


async def run_adds(server: Server, fake: FakeProvider, adds: int, users: int) -> dict:
    headers = {"X-API-Key": server.key}
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=120, limits=limits) as client:
        config = {
            "llm_config": {
                "model": "bench-model",
                "model_endpoint_type": "openai",
                "model_endpoint": fake.openai_base_url,
                "api_key": "bench",
                "context_window": 128000,
            }
        }
        (await client.post("/agents/meta/initialize", json={"config": config})).raise_for_status()
        started_at = datetime.now(UTC)

        async def add(i: int) -> str:
            body = {
                "user_id": f"user-{i % users}",
                "messages": [
                    {"role": "user", "content": f"I went hiking on trail number {i}."},
                    {"role": "assistant", "content": "Sounds lovely!"},
                ],
            }
            response = await client.post("/memory/add", json=body)
            response.raise_for_status()
            return response.json()["job_id"]

        cpu_before = server.cpu_seconds(), time.process_time()
        job_ids = await asyncio.gather(*(add(i) for i in range(adds)))

        # One user's jobs finish in order, so watching each user's last job is enough; polling every
        # job would load the server being measured. (Adds sent at once may reach the server in any
        # order, so a few other jobs can still be running then: they are waited for too.) The
        # end time is the last job's own finished_at (same machine, same clock), so polling once a
        # second loses no precision: at 4 polls a second the polling alone cost the server ~15 % of
        # its CPU during the run.
        async def status(job_id: str) -> dict:
            return (await client.get(f"/memory/jobs/{job_id}")).json()

        def finished(job: dict) -> bool:
            return job["status"] in ("succeeded", "failed")

        def cpu_used() -> tuple[float, float]:
            return server.cpu_seconds() - cpu_before[0], time.process_time() - cpu_before[1]

        pending = set({i % users: job_id for i, job_id in enumerate(job_ids)}.values())
        while pending:
            await asyncio.sleep(POLL_SECONDS)
            pending = {job_id for job_id in pending if not finished(await status(job_id))}
        server_cpu, bench_cpu = cpu_used()
        jobs = {job_id: await status(job_id) for job_id in job_ids}
        while unfinished := [job_id for job_id, job in jobs.items() if not finished(job)]:
            await asyncio.sleep(POLL_SECONDS)
            jobs.update({job_id: await status(job_id) for job_id in unfinished})
            server_cpu, bench_cpu = cpu_used()
        last = max(datetime.fromisoformat(job["finished_at"]) for job in jobs.values())
        elapsed = (last - started_at).total_seconds()
    failed = sum(job["status"] == "failed" for job in jobs.values())
    return {
        "adds": adds,
        "users": users,
        "workers": server.workers,
        "seconds": elapsed,
        "adds_per_second": adds / elapsed,
        "failed": failed,
        "llm_calls_per_add": statistics.mean(job["llm_calls"] for job in jobs.values()),
        "job_ms_median": statistics.median(job["duration_ms"] for job in jobs.values()),
        "server_cpu_ms_per_add": 1000 * server_cpu / adds,
        "bench_cpu_ms_per_add": 1000 * bench_cpu / adds,  # the fake provider and the clients
    }


async def rate(
    client: httpx.AsyncClient, method: str, path: str, concurrency: int, seconds: float, body: dict | None = None
) -> float:
    count = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            response = await client.request(method, path, json=body)
            response.raise_for_status()
            count += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - started)


async def acknowledgement(server: Server, concurrency: int, seconds: float) -> dict:
    headers = {"X-API-Key": server.key}
    async with httpx.AsyncClient(
        base_url=server.url, headers=headers, timeout=60, limits=httpx.Limits(max_connections=concurrency)
    ) as client:
        body = {
            "user_id": "ack-user",
            "messages": [{"role": "user", "content": "I read a book."}],
            "memory_types": ["episodic"],
        }
        health = await rate(client, "GET", "/health", concurrency, seconds)
        add = await rate(client, "POST", "/memory/add", concurrency, seconds, body)
    return {"concurrency": concurrency, "health_rps": health, "add_rps": add, "ratio": add / health}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adds", type=int, default=200)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--latency-ms", type=float, default=300)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--baseline-adds", type=int, default=20, help="adds for the one-worker comparison")
    parser.add_argument("--ack-seconds", type=float, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    results: dict = {"latency_ms": args.latency_ms, "load_average": os.getloadavg()}
    async with FakeProvider(responder=scripted_model, latency=args.latency_ms / 1000) as fake:
        async with Server(args.workers) as server:
            results["parallel"] = await run_adds(server, fake, args.adds, args.users)
            results["ack"] = await acknowledgement(server, 16, args.ack_seconds)
        async with Server(1) as server:
            results["one_at_a_time"] = await run_adds(server, fake, args.baseline_adds, args.users)
    parallel, serial = results["parallel"], results["one_at_a_time"]
    results["speedup"] = parallel["adds_per_second"] / serial["adds_per_second"]

    print(
        f"fake LLM latency {args.latency_ms:.0f} ms; load average {results['load_average'][0]:.2f}; "
        "server, fake and load generator share this machine"
    )
    for name, row in (("parallel", parallel), ("one at a time", serial)):
        print(
            f"{name:>14}: {row['adds']} adds / {row['users']} users, {row['workers']} workers: "
            f"{row['seconds']:.1f} s, {row['adds_per_second']:.2f} adds/s, {row['llm_calls_per_add']:.2f} "
            f"LLM calls/add, median job {row['job_ms_median']:.0f} ms, failed {row['failed']}; CPU ms per add: "
            f"server {row['server_cpu_ms_per_add']:.0f}, fake provider + clients {row['bench_cpu_ms_per_add']:.0f}"
        )
    print(f"speed-up over one-at-a-time: {results['speedup']:.1f}x")
    ack = results["ack"]
    print(
        f"acknowledge at c={ack['concurrency']}: /memory/add {ack['add_rps']:.0f} req/s vs /health "
        f"{ack['health_rps']:.0f} req/s = {ack['ratio']:.2f} of /health"
    )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
