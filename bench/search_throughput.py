"""Throughput and latency of ``GET /memory/search`` next to a ``/health`` baseline from the same run.

What it measures: for each dataset size (episodic memories of one user, default 1k/10k/100k) a
real server process (``python -m mirix.cli serve``) answers a fixed-duration closed loop of N
concurrent clients (httpx, keep-alive) per configuration: ``/health`` (no auth, one ``SELECT 1``)
and ``/memory/search`` with bm25, embedding and hybrid at concurrency 1 and 16, hybrid over all
memory types, and hybrid with questions never asked before (so the server's query-embedding cache
misses and the ONNX model runs). Reported per configuration: req/s, p50/p95/p99 latency, req/s
relative to ``/health`` at the same concurrency, server CPU ms per request (from /proc, so it does
not depend on how busy the machine is) and cores used by other processes meanwhile.

How rows get there does not matter for the search path, so seeding skips the HTTP API and the
embedding model: it uses the server's own ``MemoryManager.insert_many`` in this process with a
stand-in embedder returning deterministic pseudo-random unit vectors, stored under the real model
name, so the real query embedding is compared against them at identical cost. Texts are Zipf
distributed words from the bundled tokenizer's vocabulary (roughly frequency ordered).
The server and the load generator share the machine's cores; the output says how many.
``MIRIX_*`` variables in the environment are server settings (e.g. ``MIRIX_VECTOR_CACHE_MB=1024``).

    .venv/bin/python bench/search_throughput.py --out /tmp/search-sqlite.json
    .venv/bin/python bench/search_throughput.py --sizes 10000 \
        --pg-uri postgresql://postgres@127.0.0.1:59901/postgres --out /tmp/search-pg.json
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json
import os
import random
import secrets
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import numpy as np

from mirix.search.text import STOP_WORDS

USER = "bench-user"
VOCABULARY = 4000
SEED_BATCH = 2000
TEMPLATES = (
    "what did I say about {0}", "when did we talk about {0} and {1}", "who was with me at the {0}",
    "where did I leave the {0} {1}", "do you remember the {0} {1} {2}", "how did the {0} go",
    "what happened with {0} {1}", "which {0} did I like", "tell me about my {0} {1}", "why was {0} {1}",
)  # fmt: skip
EVENT_TYPES = ("activity", "conversation", "meeting", "travel", "purchase", "health", "work")
TICK = os.sysconf("SC_CLK_TCK")


class Text:
    """Words drawn with Zipf frequencies from the first ``VOCABULARY`` whole words of the tokenizer."""

    def __init__(self, seed: int) -> None:
        from mirix.embeddings.local import model_files

        vocab: dict[str, int] = json.loads(gzip.decompress(model_files()[1].read_bytes()))["model"]["vocab"]
        ordered = [w for w, _ in sorted(vocab.items(), key=lambda kv: kv[1]) if w.isascii() and w.isalpha()]
        self.words = np.array([w for w in ordered if w.islower() and len(w) > 1][:VOCABULARY])
        weights = 1.0 / np.arange(1, len(self.words) + 1)
        self.p = weights / weights.sum()
        content = np.array([w not in STOP_WORDS for w in self.words])
        self.content_p = np.where(content, self.p, 0) / self.p[content].sum()
        self.rng = np.random.default_rng(seed)

    def sentence(self, n: int) -> str:
        words = self.rng.choice(self.words, size=n, p=self.p)
        return " ".join(words).capitalize() + "."

    def paragraph(self, n: int) -> str:
        parts, left = [], n
        while left > 0:
            take = min(left, int(self.rng.integers(8, 16)))
            parts.append(self.sentence(take))
            left -= take
        return " ".join(parts)

    def question(self) -> str:
        template = TEMPLATES[int(self.rng.integers(len(TEMPLATES)))]
        return template.format(*self.rng.choice(self.words, size=3, p=self.content_p)) + "?"


class PseudoEmbedder:
    """Deterministic unit vectors per text, under the configured model's name and dimension."""

    def __init__(self, model: str, dim: int) -> None:
        self.model, self.dim = model, dim

    async def embed(self, texts: list[str]) -> list[list[float]]:
        out = []
        for text in texts:
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
            v = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
            out.append((v / np.linalg.norm(v)).tolist())
        return out


async def seed(data_dir: Path, db_uri: str | None, size: int) -> str:
    """Create an org, client and key and ``size`` episodic memories of ``USER``; return the key."""
    from mirix.db.migrate import upgrade
    from mirix.server.server import AsyncServer
    from mirix.services.clients import actor_for
    from mirix.services.memory.kinds import EPISODIC
    from mirix.settings import Settings

    settings = Settings(data_dir=data_dir, database_url=db_uri, bootstrap=False, _env_file=None)
    await upgrade(settings.async_database_url)
    server = AsyncServer(settings)
    try:
        org = await server.organizations.get_or_create_by_name("bench-org")
        client = await server.clients.create(org.id, "bench-client", "default", ["default"])
        _, key = await server.clients.issue_api_key(org.id, client.id)
        server.memories.embedder = PseudoEmbedder(settings.embedding_model, settings.embedding_dim)
        text, now = Text(seed=size), datetime.now(UTC)
        for start in range(0, size, SEED_BATCH):
            items = [
                {
                    "event_type": EVENT_TYPES[i % len(EVENT_TYPES)],
                    "actor": "user" if i % 3 else "assistant",
                    "summary": text.sentence(int(text.rng.integers(6, 21))),
                    "details": text.paragraph(int(text.rng.integers(30, 81))),
                    "occurred_at": now - timedelta(seconds=float(text.rng.uniform(0, 730 * 86400))),
                }
                for i in range(start, min(size, start + SEED_BATCH))
            ]
            await server.memories.insert_many(actor_for(client), EPISODIC, USER, items)
        if db_uri:  # what autovacuum would have done by the time a server has this much data
            async with server.engine.begin() as connection:
                await connection.exec_driver_sql("ANALYZE")
        return key
    finally:
        await server.close()


@dataclass(frozen=True)
class Config:
    endpoint: str  # "health" or "search"
    method: str
    concurrency: int
    memory_type: str = "episodic"
    fresh: bool = False  # questions never asked before: the query embedding is computed

    @property
    def label(self) -> str:
        kind = "" if self.endpoint == "health" else f" {self.memory_type}" + (" fresh-q" if self.fresh else "")
        return f"{self.endpoint:6} {self.method:9}{kind}"


def configs(levels: list[int]) -> list[Config]:
    top = max(levels)
    out = [Config("health", "-", c) for c in levels]
    out += [Config("search", m, c) for m in ("bm25", "embedding", "hybrid") for c in levels]
    out.append(Config("search", "hybrid", top, memory_type="all"))
    out += [Config("search", "hybrid", c, fresh=True) for c in levels]
    return out


def proc_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


def machine_busy_ticks() -> int:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values[:8]) - values[3] - values[4]  # everything but idle and iowait (no guest double count)


class Cpu:
    """CPU ticks of the server, its database backends (PostgreSQL), this process and the machine."""

    def __init__(self, server_pid: int, pg_admin: Any | None, database: str | None) -> None:
        self.server_pid, self.pg_admin, self.database = server_pid, pg_admin, database

    async def snapshot(self) -> dict[str, Any]:
        db: dict[int, int] = {}
        if self.pg_admin is not None:
            pids = await self.pg_admin.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", self.database)
            db = {r["pid"]: proc_ticks(r["pid"]) for r in pids}
        own = os.times()
        return {
            "machine": machine_busy_ticks(), "server": proc_ticks(self.server_pid), "db": db,
            "bench": round((own.user + own.system) * TICK),
        }  # fmt: skip

    @staticmethod
    def delta(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
        seconds = {k: (b[k] - a[k]) / TICK for k in ("machine", "server", "bench")}
        seconds["db"] = sum(t - a["db"].get(pid, 0) for pid, t in b["db"].items()) / TICK
        seconds["other"] = max(0.0, seconds["machine"] - seconds["server"] - seconds["bench"] - seconds["db"])
        return seconds


class Questions:
    """The fixed list (sampled at random) and an endless stream of questions never asked before."""

    def __init__(self, count: int) -> None:
        text = Text(seed=7)
        self.fixed = list(dict.fromkeys(text.question() for _ in range(count)))
        self._seen = set(self.fixed)
        self._fresh = Text(seed=12345)
        self._pick = random.Random(7)  # noqa: S311 - sampling, not security

    def sample(self) -> str:
        return self._pick.choice(self.fixed)

    def fresh(self) -> str:
        while (question := self._fresh.question()) in self._seen:
            pass
        self._seen.add(question)
        return question


async def load(
    client: httpx.AsyncClient, cfg: Config, seconds: float, key: str, questions: Questions
) -> tuple[list[float], list[str], float]:
    """Closed loop of ``cfg.concurrency`` workers for ``seconds``: latencies (s), errors, wall time."""
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            if cfg.endpoint == "health":
                request = client.build_request("GET", "/health")
            else:
                query = questions.fresh() if cfg.fresh else questions.sample()
                request = client.build_request("GET", "/memory/search", params=search_params(query, cfg), headers={
                    "X-API-Key": key})  # fmt: skip
            started = time.perf_counter()
            response = await client.send(request)
            if response.status_code == 200:
                latencies.append(time.perf_counter() - started)
            else:
                errors.append(f"{response.status_code} {response.text[:300]}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(cfg.concurrency)))
    return latencies, errors, time.perf_counter() - started


def search_params(query: str, cfg: Config) -> dict[str, Any]:
    return {"user_id": USER, "query": query, "memory_type": cfg.memory_type, "search_method": cfg.method, "limit": 10}


async def measure(base: str, key: str, cpu: Cpu, args: argparse.Namespace, questions: Questions) -> list[dict]:
    limits = httpx.Limits(max_connections=max(args.concurrency), max_keepalive_connections=max(args.concurrency))
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:
        # Warm-up. Embedding every fixed question through a search of a type this user has nothing
        # of fills the server's query-embedding cache cheaply; then a few real searches load the
        # vector matrices, the ONNX model and the hot database pages.
        headers = {"X-API-Key": key}
        empty, hybrid = Config("search", "embedding", 1, memory_type="semantic"), Config("search", "hybrid", 1)
        for i in range(0, len(questions.fixed), 8):
            batch = questions.fixed[i : i + 8]
            for response in await asyncio.gather(
                *(client.get("/memory/search", params=search_params(q, empty), headers=headers) for q in batch)
            ):
                response.raise_for_status()
        for q in questions.fixed[:4]:
            response = await client.get("/memory/search", params=search_params(q, hybrid), headers=headers)
            response.raise_for_status()
            if not response.json()["count"]:
                raise RuntimeError(f"warm-up search for {q!r} found nothing: is the data there?")
        rows: list[dict] = []
        for cfg in configs(args.concurrency):
            await load(client, cfg, args.warmup, key, questions)
            before = await cpu.snapshot()
            latencies, errors, wall = await load(client, cfg, args.duration, key, questions)
            used = Cpu.delta(before, await cpu.snapshot())
            ms = np.percentile(np.array(latencies) * 1000, [50, 95, 99]) if latencies else [float("nan")] * 3
            n = max(len(latencies), 1)
            rows.append({
                **asdict(cfg), "label": cfg.label, "requests": len(latencies), "errors": len(errors),
                "first_error": errors[0] if errors else None,
                "rps": len(latencies) / wall, "p50_ms": ms[0], "p95_ms": ms[1], "p99_ms": ms[2],
                "server_cpu_ms": 1000 * used["server"] / n, "db_cpu_ms": 1000 * used["db"] / n,
                "bench_cpu_ms": 1000 * used["bench"] / n, "other_cores": used["other"] / wall,
            })  # fmt: skip
            print(f"  {cfg.label} c={cfg.concurrency}: {rows[-1]['rps']:.1f} req/s", flush=True)
            if errors:
                print(f"    {len(errors)} failed, first: {errors[0]}", flush=True)
        health = {r["concurrency"]: r["rps"] for r in rows if r["endpoint"] == "health"}
        for r in rows:
            r["vs_health"] = r["rps"] / health[r["concurrency"]] if health.get(r["concurrency"]) else None
        return rows


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def fresh_database(pg_uri: str) -> AsyncIterator[str]:
    """A new database on the PostgreSQL server of ``pg_uri``, dropped afterwards."""
    import asyncpg

    name = f"mirix_tput_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(pg_uri)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield urlunsplit(urlsplit(pg_uri)._replace(path=f"/{name}"))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def healthy(base: str, process: asyncio.subprocess.Process, seconds: float = 120) -> bool:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        while time.monotonic() < deadline and process.returncode is None:
            try:
                if (await client.get("/health")).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.3)
    return False


async def serve(data_dir: Path, db_uri: str | None, stack: AsyncExitStack) -> tuple[str, asyncio.subprocess.Process]:
    # MIRIX_* settings in the caller's environment (e.g. MIRIX_VECTOR_CACHE_MB) reach the server.
    env = {k: v for k, v in os.environ.items() if k not in ("MIRIX_PG_URI", "MIRIX_DATABASE_URL")}
    env.update(MIRIX_DATA_DIR=str(data_dir), MIRIX_BOOTSTRAP="false", MIRIX_LOG_LEVEL="WARNING")
    if db_uri:
        env["MIRIX_PG_URI"] = db_uri
    port, log_path = free_port(), data_dir / "server.log"
    with log_path.open("w") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mirix.cli", "serve", "--port", str(port), "--data-dir", str(data_dir),
            env=env, cwd=data_dir, stdout=log, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip

    async def stop() -> None:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()

    stack.push_async_callback(stop)
    base = f"http://127.0.0.1:{port}"
    if not await healthy(base, process):
        raise RuntimeError(f"server did not come up:\n{log_path.read_text()[-3000:]}")
    return base, process


def wait_for_quiet(threshold: float, max_wait: float) -> dict[str, Any]:
    started = time.monotonic()
    while (load := os.getloadavg())[0] >= threshold and time.monotonic() - started < max_wait:
        print(f"  waiting for the machine to calm down: load {load[0]:.2f} (want < {threshold})", flush=True)
        time.sleep(15)
    return {"loadavg": os.getloadavg(), "waited_s": round(time.monotonic() - started), "quiet": load[0] < threshold}


def print_table(size: int, rows: list[dict], note: str) -> None:
    print(f"\n== {size:,} episodic memories of one user — {note}")
    print(f"{'configuration':35} {'c':>3} {'req/s':>8} {'p50':>8} {'p95':>8} {'p99':>8} {'xhealth':>8} "
          f"{'srvCPU':>7} {'dbCPU':>6} {'cliCPU':>6} {'others':>6} {'err':>4}")  # fmt: skip
    for r in rows:
        ratio = f"{r['vs_health']:.2f}" if r["vs_health"] is not None else "-"
        print(f"{r['label']:35} {r['concurrency']:>3} {r['rps']:>8.1f} {r['p50_ms']:>8.2f} {r['p95_ms']:>8.2f} "
              f"{r['p99_ms']:>8.2f} {ratio:>8} {r['server_cpu_ms']:>7.2f} {r['db_cpu_ms']:>6.2f} "
              f"{r['bench_cpu_ms']:>6.2f} {r['other_cores']:>6.2f} {r['errors']:>4}")  # fmt: skip
    print("latencies in ms; xhealth = req/s / /health req/s at the same c; srvCPU/dbCPU/cliCPU = CPU ms per request of")
    print("the server / its PostgreSQL backends / this load generator; others = cores other processes used meanwhile")


def print_summary(results: list[dict]) -> None:
    if len(results) < 2:
        return
    sizes = [r["size"] for r in results]
    print(f"\n== scaling {' -> '.join(f'{s:,}' for s in sizes)} memories (x{sizes[-1] / sizes[0]:g} data)")
    for i, row in enumerate(results[0]["rows"]):
        per_size = [r["rows"][i] for r in results]
        p50 = " ".join(f"{r['p50_ms']:7.2f}" for r in per_size)
        rps = " ".join(f"{r['rps']:7.1f}" for r in per_size)
        cpu = " ".join(f"{r['server_cpu_ms'] + r['db_cpu_ms']:6.2f}" for r in per_size)
        growth = per_size[-1]["server_cpu_ms"] + per_size[-1]["db_cpu_ms"]
        growth /= max(per_size[0]["server_cpu_ms"] + per_size[0]["db_cpu_ms"], 1e-9)
        print(f"{row['label']:35} c={row['concurrency']:<3} p50 ms {p50} | req/s {rps} | CPU ms {cpu} x{growth:.1f}")


async def main(args: argparse.Namespace) -> dict[str, Any]:
    import asyncpg

    questions = Questions(args.questions)
    db = "postgresql" if args.pg_uri else "sqlite"
    note = f"{db}, server and load generator share {os.cpu_count()} cores"
    report: dict[str, Any] = {"database": db, "cpus": os.cpu_count(), "duration_s": args.duration, "sizes": []}
    async with AsyncExitStack() as stack:
        datasets = []
        for size in args.sizes:  # seed everything first, so seeding load does not overlap measuring
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mirix-tput-")))
            db_uri = await stack.enter_async_context(fresh_database(args.pg_uri)) if args.pg_uri else None
            started = time.perf_counter()
            key = await seed(data_dir, db_uri, size)
            print(f"seeded {size:,} memories in {time.perf_counter() - started:.0f} s", flush=True)
            datasets.append((size, data_dir, db_uri, key, time.perf_counter() - started))
        report["before"] = wait_for_quiet(args.max_load, args.max_wait)
        print(f"load average before measuring: {report['before']['loadavg']}", flush=True)
        for size, data_dir, db_uri, key, seed_s in datasets:
            async with AsyncExitStack() as run:
                base, process = await serve(data_dir, db_uri, run)
                print(f"server pid {process.pid} at {base} ({size:,} memories)", flush=True)
                admin = await asyncpg.connect(args.pg_uri) if args.pg_uri else None
                if admin is not None:
                    run.push_async_callback(admin.close)
                cpu = Cpu(process.pid, admin, db_uri.rsplit("/", 1)[1] if db_uri else None)
                rows = await measure(base, key, cpu, args, questions)
            result = {"size": size, "seed_s": seed_s, "loadavg_after": os.getloadavg(), "rows": rows}
            report["sizes"].append(result)
            print_table(size, rows, note)
            print(f"load average after: {tuple(round(x, 2) for x in result['loadavg_after'])}", flush=True)
    print_summary(report["sizes"])
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ints = lambda s: [int(x) for x in s.split(",")]  # noqa: E731
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=ints, default=[1000, 10000, 100000])
    parser.add_argument("--concurrency", type=ints, default=[1, 16])
    parser.add_argument("--pg-uri", help="PostgreSQL server: a fresh database per size is created and dropped")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds measured per configuration")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds discarded before each configuration")
    parser.add_argument("--questions", type=int, default=300, help="size of the fixed question list")
    parser.add_argument("--max-load", type=float, default=1.0, help="wait until the 1-minute load is below this")
    parser.add_argument("--max-wait", type=float, default=240.0, help="... but at most this many seconds")
    parser.add_argument("--out", type=Path, help="write the results as JSON")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    # SIGTERM (e.g. from `timeout`) cancels like Ctrl-C, so the server stops and the data is removed.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await main(args)


if __name__ == "__main__":
    arguments = parse_args()
    result = asyncio.run(run(arguments))
    if arguments.out:
        arguments.out.write_text(json.dumps(result, indent=2, default=float))
