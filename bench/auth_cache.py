"""Authenticated requests with the in-process cache and with Redis, side by side, on one database.

Two real servers (``python -m mirix.cli serve``) run at once: one without Redis (API keys are not
cached in-process by default; users are), one with ``MIRIX_REDIS_URL`` (both cached). Each answers
a closed loop of N concurrent keep-alive clients on ``/health`` (no auth, one ``SELECT 1``: the
baseline), ``/memory/fields`` (authentication only) and ``/users/{id}`` (authentication plus a user
lookup), in alternating one-second slices, so both see the same machine load. Reported: req/s,
latency, server CPU ms per request (from /proc: the steadiest number on a busy machine) and
database statements per request, counted from a short extra start of each server with
``MIRIX_DB_ECHO=true`` (echo slows a server down, so the throughput runs go without it). Redis is a
redis-server this script starts on a free port, unless ``--redis-url`` names one (keys go under a
random prefix and are deleted afterwards).

    .venv/bin/python bench/auth_cache.py
    .venv/bin/python bench/auth_cache.py --pg-uri postgresql://postgres@127.0.0.1:59901/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

TICK = os.sysconf("SC_CLK_TCK")
STATEMENT = re.compile(r"sqlalchemy\.engine\.Engine\s+(SELECT|INSERT|UPDATE|DELETE|WITH)\b")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


@asynccontextmanager
async def server(data_dir: Path, env: dict[str, str], log: Path) -> AsyncIterator[tuple[str, int]]:
    port = free_port()
    full = {k: v for k, v in os.environ.items() if not k.startswith("MIRIX_")}
    full.update(MIRIX_DATA_DIR=str(data_dir), MIRIX_AUTO_MIGRATE="true", MIRIX_LOG_LEVEL="WARNING", **env)
    with log.open("w") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mirix.cli", "serve", "--port", str(port), env=full, stdout=out, stderr=out
        )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as client:
            for _ in range(600):
                try:
                    if (await client.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"server did not start:\n{(await asyncio.to_thread(log.read_text))[-2000:]}")
        yield base, process.pid
    finally:
        process.send_signal(signal.SIGINT)
        await process.wait()


class Load:
    """Closed-loop load on one server and endpoint, run in slices; totals kept across slices."""

    def __init__(self, base: str, pid: int, path: str, headers: dict[str, str], concurrency: int) -> None:
        self.base, self.pid, self.path, self.headers, self.concurrency = base, pid, path, headers, concurrency
        self.latencies: list[float] = []
        self.errors, self.elapsed, self.ticks = 0, 0.0, 0

    async def slice(self, seconds: float) -> None:
        stop_at = time.perf_counter() + seconds

        async def worker(client: httpx.AsyncClient) -> None:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                response = await client.get(self.path, headers=self.headers)
                self.latencies.append(time.perf_counter() - started)
                self.errors += response.status_code != 200

        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(base_url=self.base, limits=limits, timeout=30) as client:
            for _ in range(5):
                await client.get(self.path, headers=self.headers)  # connections open, caches filled
            ticks, started = cpu_ticks(self.pid), time.perf_counter()
            await asyncio.gather(*(worker(client) for _ in range(self.concurrency)))
            self.elapsed += time.perf_counter() - started
            self.ticks += cpu_ticks(self.pid) - ticks

    def result(self) -> dict:
        ordered = sorted(self.latencies)
        return {
            "rps": len(ordered) / self.elapsed,
            "p50_ms": 1000 * ordered[len(ordered) // 2],
            "p99_ms": 1000 * ordered[int(len(ordered) * 0.99)],
            "cpu_ms": 1000 * self.ticks / TICK / len(ordered),
            "errors": self.errors,
        }


async def statements_per_request(base: str, path: str, headers: dict[str, str], log: Path, n: int = 100) -> float:
    async with httpx.AsyncClient(base_url=base) as client:
        for _ in range(5):
            await client.get(path, headers=headers)
        await asyncio.sleep(0.2)
        before = len(STATEMENT.findall(await asyncio.to_thread(log.read_text)))
        for _ in range(n):
            await client.get(path, headers=headers)
        await asyncio.sleep(0.2)
        return (len(STATEMENT.findall(await asyncio.to_thread(log.read_text))) - before) / n


@asynccontextmanager
async def redis(url: str | None) -> AsyncIterator[str]:
    if url:
        yield url
        return
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        shutil.which("redis-server") or "redis-server",
        *("--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        await asyncio.sleep(0.3)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        await process.wait()


@asynccontextmanager
async def database(pg_uri: str | None) -> AsyncIterator[str | None]:
    if not pg_uri:
        yield None
        return
    import asyncpg

    name = f"mirix_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(pg_uri)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield urlunsplit(urlsplit(pg_uri)._replace(path=f"/{name}"))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def modes_of(local: tuple[str, int], shared: tuple[str, int]) -> list[tuple[str, tuple[str, int]]]:
    return [("in-process", local), ("redis", shared)]


async def main(args: argparse.Namespace) -> None:
    from redis.asyncio import Redis

    prefix = f"mirix-bench-{secrets.token_hex(4)}:"
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        async with database(args.pg_uri) as db_uri, redis(args.redis_url) as redis_url:
            base_env = {"MIRIX_PG_URI": db_uri} if db_uri else {}
            modes = {
                "in-process": base_env,
                "redis": {**base_env, "MIRIX_REDIS_URL": redis_url, "MIRIX_REDIS_PREFIX": prefix},
            }
            # The first start bootstraps the database (org, client, user, key); the second reuses it.
            async with (
                server(data_dir, modes["in-process"], data_dir / "local.log") as local,
                server(data_dir, modes["redis"], data_dir / "redis.log") as shared,
            ):
                headers = {"X-API-Key": (data_dir / "api_key").read_text().strip()}
                async with httpx.AsyncClient(base_url=local[0]) as client:
                    user = (await client.get("/users", headers=headers)).json()[0]["id"]
                paths = {"/health": {}, "/memory/fields": headers, f"/users/{user}": headers}
                rows = []
                for path, h in paths.items():
                    loads = {
                        mode: Load(*started, path, h, args.concurrency) for mode, started in modes_of(local, shared)
                    }
                    for _ in range(args.rounds):
                        for one in loads.values():
                            await one.slice(args.seconds / args.rounds)
                    rows += [(mode, path, one.result()) for mode, one in loads.items()]
            for mode, env in modes.items():
                log = data_dir / f"echo-{mode}.log"
                async with server(data_dir, {**env, "MIRIX_DB_ECHO": "true"}, log) as (base, _):
                    for row_mode, path, result in rows:
                        if row_mode == mode:
                            result["statements"] = await statements_per_request(base, path, paths[path], log)
            client = Redis.from_url(redis_url)
            keys = [key async for key in client.scan_iter(match=prefix + "*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()

    db = "postgresql" if args.pg_uri else "sqlite"
    print(f"\n{db}, concurrency {args.concurrency}, {args.seconds:g} s per row, {os.cpu_count()} cores shared")
    print(
        f"{'mode':11} {'endpoint':14} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'server CPU ms/req':>18} "
        f"{'db stmts/req':>13} {'errors':>7}"
    )
    for mode, path, r in rows:
        shown = path if not path.startswith("/users/") else "/users/{id}"
        print(
            f"{mode:11} {shown:14} {r['rps']:7.0f} {r['p50_ms']:7.2f} {r['p99_ms']:7.2f} {r['cpu_ms']:18.3f} "
            f"{r['statements']:13.2f} {r['errors']:7d}"
        )
    by = {(mode, path): r for mode, path, r in rows}
    for path in dict.fromkeys(path for _, path, _ in rows):
        shown = path if not path.startswith("/users/") else "/users/{id}"
        redis_row, local_row = by[("redis", path)], by[("in-process", path)]
        print(
            f"redis / in-process for {shown:14}: req/s x{redis_row['rps'] / local_row['rps']:.2f}, "
            f"server CPU per request x{redis_row['cpu_ms'] / local_row['cpu_ms']:.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg-uri", help="run on a fresh database of this PostgreSQL server (dropped afterwards)")
    parser.add_argument("--redis-url", help="use this Redis instead of starting a redis-server")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=6.0, help="per endpoint and mode")
    parser.add_argument("--rounds", type=int, default=6, help="alternating slices the seconds are cut into")
    asyncio.run(main(parser.parse_args()))
