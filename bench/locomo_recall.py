"""Retrieval quality of memory search on LoCoMo, measured through the real HTTP API.

What it measures: every dialogue turn of every LoCoMo conversation is imported as one episodic
memory (one user per conversation, the turn's dia_id kept in ``filter_tags``); then every question
of categories 1-4 (multi-hop, temporal, open-domain, single-hop; 5 = adversarial is skipped) is
sent to ``GET /memory/search`` of that conversation's user with each search method. recall@k is
the fraction of the question's evidence turns found among the top k results, averaged over
questions (questions without evidence are skipped). Evidence ids are normalised ("D8:6; D9:17" is
two ids, "D:11:26" is "D11:26"); ids naming no turn of the conversation are dropped.

How it runs: a fresh server (``python -m mirix.cli serve``) on a temporary data directory, SQLite
by default or a fresh PostgreSQL database created for the run and dropped after it
(``--pg-uri``). Server settings such as the hybrid fusion weights come from ``--env KEY=VALUE``.

    .venv/bin/python bench/locomo_recall.py --out /tmp/locomo.json
    .venv/bin/python bench/locomo_recall.py --methods hybrid --env MIRIX_HYBRID_TEXT_WEIGHT=2
    .venv/bin/python bench/locomo_recall.py --pg-uri postgresql://postgres@127.0.0.1:59901/postgres

The data (CC BY-NC 4.0) is read where it lies; it is never copied into the repository.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

DEFAULT_DATA = Path("/work/shared/data/locomo-dev.json")
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
KS = (5, 10)
IMPORT_BATCH = 5000  # the server's per-request maximum
CONCURRENCY = 8
STARTUP_SECONDS = 120
_EVIDENCE = re.compile(r"D:?(\d+):(\d+)")
_SESSION = re.compile(r"session_(\d+)")


@dataclass(frozen=True)
class Question:
    user_id: str
    text: str
    category: int
    evidence: frozenset[str]


def load(path: Path, limit: int | None, speaker_in_text: bool = False) -> tuple[list[dict[str, Any]], list[Question]]:
    """Import items (one per dialogue turn) and the answerable questions of categories 1-4.

    ``speaker_in_text`` writes "Speaker: " before summary and details (the speaker is otherwise
    only in ``actor``, which BM25 indexes but no embedding covers)."""
    samples = json.loads(path.read_text())[:limit]
    items: list[dict[str, Any]] = []
    questions: list[Question] = []
    for sample in samples:
        user, conversation = sample["sample_id"], sample["conversation"]
        turns: set[str] = set()
        for key in sorted((k for k in conversation if _SESSION.fullmatch(k)), key=lambda k: int(k.split("_")[1])):
            when = datetime.strptime(conversation[f"{key}_date_time"], "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)
            for turn in conversation[key]:
                text = f"{turn['speaker']}: {turn['text']}" if speaker_in_text else turn["text"]
                details = text + (f" (shared a photo: {turn['blip_caption']})" if turn.get("blip_caption") else "")
                turns.add(turn["dia_id"])
                items.append(
                    {
                        "memory_type": "episodic",
                        "user_id": user,
                        "occurred_at": when.isoformat(),
                        "actor": turn["speaker"],
                        "event_type": "dialogue",
                        "summary": text[:200],
                        "details": details,
                        "filter_tags": {"dia_id": turn["dia_id"]},
                    }
                )
        for qa in sample["qa"]:
            evidence = {f"D{s}:{t}" for raw in qa["evidence"] for s, t in _EVIDENCE.findall(raw)} & turns
            if qa["category"] in CATEGORIES and evidence:
                questions.append(Question(user, qa["question"], qa["category"], frozenset(evidence)))
    return items, questions


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _admin(pg_uri: str, sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(pg_uri)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@asynccontextmanager
async def fresh_database(pg_uri: str) -> AsyncIterator[str]:
    """A new PostgreSQL database on the server of ``pg_uri``, dropped afterwards."""
    name = f"mirix_bench_{secrets.token_hex(4)}"
    await _admin(pg_uri, f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(pg_uri)._replace(path=f"/{name}"))
    finally:
        await _admin(pg_uri, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def running_server(pg_uri: str | None, extra_env: dict[str, str]) -> AsyncIterator[tuple[str, str]]:
    """Start ``mirix serve`` on a temporary data dir; yield (base URL, bootstrap API key)."""
    with tempfile.TemporaryDirectory(prefix="mirix-bench-") as tmp:
        env = {k: v for k, v in os.environ.items() if k not in ("MIRIX_PG_URI", "MIRIX_DATABASE_URL")}
        env.update(extra_env, MIRIX_DATA_DIR=tmp)
        # cwd=tmp for every command: a stray .env in the caller's directory must not pick the database.
        mirix = (sys.executable, "-m", "mirix.cli")
        async with fresh_database(pg_uri) if pg_uri else _nothing() as db_uri:
            if db_uri:
                env["MIRIX_PG_URI"] = db_uri
                migrate = await asyncio.create_subprocess_exec(*mirix, "migrate", env=env, cwd=tmp)
                if await migrate.wait() != 0:
                    raise RuntimeError("mirix migrate failed")
            port = free_port()
            log_path = Path(tmp) / "server.log"
            with log_path.open("w") as log:
                process = await asyncio.create_subprocess_exec(
                    *mirix, "serve", "--port", str(port), "--data-dir", tmp,
                    env=env, cwd=tmp, stdout=log, stderr=asyncio.subprocess.STDOUT,
                )  # fmt: skip
            base = f"http://127.0.0.1:{port}"
            try:
                if not await _healthy(base, process):
                    raise RuntimeError(f"server did not come up:\n{_read(log_path)[-3000:]}")
                yield base, _read(Path(tmp) / "api_key").strip()
            finally:
                if process.returncode is None:
                    process.send_signal(signal.SIGINT)
                    try:
                        await asyncio.wait_for(process.wait(), 30)
                    except TimeoutError:
                        process.kill()
                        await process.wait()


@asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield None


def _read(path: Path) -> str:
    return path.read_text()


async def _healthy(base: str, process: asyncio.subprocess.Process) -> bool:
    deadline = time.monotonic() + STARTUP_SECONDS
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        while time.monotonic() < deadline and process.returncode is None:
            try:
                if (await client.get("/health")).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.3)
    return False


async def import_items(client: httpx.AsyncClient, items: list[dict[str, Any]]) -> dict[str, str]:
    """Import everything; return memory id -> dia_id."""
    dia_of: dict[str, str] = {}
    for start in range(0, len(items), IMPORT_BATCH):
        batch = items[start : start + IMPORT_BATCH]
        response = await client.post("/memory/import", json={"items": batch}, timeout=None)
        response.raise_for_status()
        ids = response.json()["ids"]
        dia_of.update((memory_id, item["filter_tags"]["dia_id"]) for memory_id, item in zip(ids, batch, strict=True))
    return dia_of


async def run_method(
    client: httpx.AsyncClient, questions: list[Question], method: str, field: str, dia_of: dict[str, str]
) -> dict[str, Any]:
    """Search every question with one method; recall per category and pooled, and latencies."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def ask(q: Question) -> tuple[list[str], float]:
        params = {"user_id": q.user_id, "query": q.text, "memory_type": "episodic", "search_method": method,
                  "search_field": field, "limit": max(KS)}  # fmt: skip
        async with gate:
            started = time.perf_counter()
            response = await client.get("/memory/search", params=params)
            elapsed = time.perf_counter() - started
        response.raise_for_status()
        return [dia_of.get(hit["id"], "") for hit in response.json()["results"]], elapsed

    started = time.perf_counter()
    answers = await asyncio.gather(*(ask(q) for q in questions))
    wall = time.perf_counter() - started
    groups: dict[str, list[dict[int, float]]] = {"overall": []}
    for q, (found, _) in zip(questions, answers, strict=True):
        recall = {k: len(q.evidence & set(found[:k])) / len(q.evidence) for k in KS}
        groups.setdefault(str(q.category), []).append(recall)
        groups["overall"].append(recall)
    latencies = sorted(elapsed for _, elapsed in answers)
    return {
        "recall": {
            name: {"n": len(rows), **{f"recall@{k}": sum(r[k] for r in rows) / len(rows) for k in KS}}
            for name, rows in groups.items()
        },
        "results_mean": sum(len(found) for found, _ in answers) / len(answers),
        "latency_ms_mean": 1000 * sum(latencies) / len(latencies),
        "latency_ms_p95": 1000 * latencies[int(0.95 * (len(latencies) - 1))],
        "wall_seconds": wall,
    }


def print_table(result: dict[str, Any]) -> None:
    columns = [*(str(c) for c in CATEGORIES), "overall"]
    labels = [*(f"{c} {name}" for c, name in CATEGORIES.items()), "overall 1-4"]
    header = f"{'method':<10}" + "".join(f"{label:>17}" for label in labels)
    header += f"{'hits':>6}{'ms/search':>11}{'p95 ms':>9}"
    print(f"\nrecall@5 / recall@10  ({result['config']['backend']}, search_field={result['config']['field']})")
    print(header)
    for method, row in result["methods"].items():
        recall = row["recall"]
        cells = "".join(
            f"{recall[c]['recall@5']:>11.3f}/{recall[c]['recall@10']:.3f}" if c in recall else f"{'-':>17}"
            for c in columns
        )
        timing = f"{row['results_mean']:>6.1f}{row['latency_ms_mean']:>11.1f}{row['latency_ms_p95']:>9.1f}"
        print(f"{method:<10}{cells}{timing}")
    some = next(iter(result["methods"].values()))["recall"]
    print(f"{'questions':<10}" + "".join(f"{some.get(c, {}).get('n', 0):>17}" for c in columns))
    imported = result["import"]
    print(f"imported {imported['items']} turns of {imported['users']} conversations in {imported['seconds']:.1f} s")


async def main(args: argparse.Namespace) -> dict[str, Any]:
    items, questions = load(args.data, args.limit_conversations, args.speaker_in_text)
    extra_env = dict(pair.split("=", 1) for pair in args.env)
    async with running_server(args.pg_uri, extra_env) as (base, key):
        async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}, timeout=120) as client:
            started = time.perf_counter()
            dia_of = await import_items(client, items)
            import_seconds = time.perf_counter() - started
            methods = {m: await run_method(client, questions, m, args.field, dia_of) for m in args.methods}
    return {
        "config": {
            "data": str(args.data),
            "backend": "postgresql" if args.pg_uri else "sqlite",
            "field": args.field,
            "env": extra_env,
            "limit_conversations": args.limit_conversations,
            "speaker_in_text": args.speaker_in_text,
            "concurrency": CONCURRENCY,
        },
        "import": {"items": len(items), "users": len({i["user_id"] for i in items}), "seconds": import_seconds},
        "methods": methods,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="LoCoMo JSON file")
    parser.add_argument("--pg-uri", help="PostgreSQL server URI; a fresh database is created and dropped on it")
    parser.add_argument(
        "--methods", default="bm25,embedding,hybrid", type=lambda s: [m for m in s.split(",") if m], help="comma list"
    )
    parser.add_argument("--limit-conversations", type=int, default=None, metavar="N")
    parser.add_argument("--field", choices=("details", "summary", "null"), default="null", help="search_field")
    parser.add_argument("--speaker-in-text", action="store_true", help='write "Speaker: " before each turn\'s text')
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="server setting (repeatable)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    bad = [pair for pair in args.env if "=" not in pair]
    if bad:
        parser.error(f"--env takes KEY=VALUE, not {bad[0]!r}")
    return args


if __name__ == "__main__":
    arguments = parse_args()
    outcome = asyncio.run(main(arguments))
    print_table(outcome)
    if arguments.out:
        arguments.out.write_text(json.dumps(outcome, indent=2) + "\n")
