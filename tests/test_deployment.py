"""Deployment files without a Docker engine: docker-compose.yml wires only settings the server reads,
and the image's entry point and health check work when run as plain processes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
import uuid
from pathlib import Path

import httpx
import pytest
import yaml
from pydantic import AliasChoices

from mirix.db.migrate import current_revision, upgrade
from mirix.settings import Settings
from tests.conftest import BACKEND, _pg_admin, _pg_url

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"


def settings_env_fields() -> dict[str, str]:
    """Every environment variable ``Settings`` reads (from its fields and their aliases) -> field name."""
    prefix = Settings.model_config["env_prefix"]
    names = {}
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update({choice.upper(): name for choice in alias.choices if isinstance(choice, str)})
        elif isinstance(alias, str):
            names[alias.upper()] = name
        else:
            names[f"{prefix}{name}".upper()] = name
    return names


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(key): str(value) for key, value in env.items()}


def _env_file(path: Path) -> dict[str, str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_compose_wires_only_settings_the_server_reads():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"api", "postgres", "redis", "kafka"} <= set(services)
    assert services["postgres"]["image"].startswith("pgvector/pgvector:pg17")
    assert services["kafka"]["image"].startswith("apache/kafka")
    assert "controller" in _environment(services["kafka"])["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper

    api = services["api"]
    env_file = ROOT / api["env_file"].replace(".env", ".env.example")
    variables = {**_environment(api), **_env_file(env_file)}
    for line in env_file.read_text().splitlines():  # the commented-out examples must be real settings too
        if match := re.match(r"#\s*(MIRIX_\w+)=", line):
            variables[match.group(1)] = ""
    mirix = {name for name in variables if name.startswith("MIRIX_")}
    assert {"MIRIX_PG_URI", "MIRIX_REDIS_URL", "MIRIX_QUEUE", "MIRIX_JWT_SECRET_KEY", "MIRIX_WORKERS"} <= mirix
    fields = settings_env_fields()
    assert mirix - set(fields) == set(), "variables no setting reads"
    assert variables["MIRIX_QUEUE"] == "kafka"
    assert re.search(r"MIRIX_KAFKA_\w*SERVERS", " ".join(mirix))
    assert api["deploy"]["replicas"] >= 2
    # Every dependency the api waits for has a health check to wait on.
    for name, condition in api["depends_on"].items():
        assert condition["condition"] == "service_healthy" and "healthcheck" in services[name], name
    for name in ("postgres", "kafka"):
        assert services[name]["volumes"], f"{name} keeps its data in a volume"
    # A value Settings cannot parse would only fail inside the container: parse them here.
    plain = {k: v for k, v in variables.items() if k.startswith("MIRIX_") and "${" not in v and v}
    Settings(_env_file=None, **{fields[k]: v for k, v in plain.items()})


def test_dockerfile_is_multi_stage_slim_and_unprivileged():
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", dockerfile, re.M)
    assert stages == ["python:3.11-slim", "python:3.11-slim"]
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.M)
    assert re.search(r"^EXPOSE 8531$", dockerfile, re.M)
    assert "docker/entrypoint.sh" in dockerfile and "ARG EXTRAS=postgres,redis,kafka\n" in dockerfile
    assert os.access(ENTRYPOINT, os.X_OK)


def healthcheck_command() -> list[str]:
    """The Dockerfile's HEALTHCHECK command, with this interpreter for ``python``."""
    dockerfile = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    line = next(line for line in dockerfile.splitlines() if line.startswith("HEALTHCHECK"))
    command = json.loads(line.split(" CMD ", 1)[1])
    assert command[0] == "python", "the slim image has python, not curl"
    return [sys.executable, *command[1:]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def empty_database(tmp_path: Path):
    """Environment of a never-migrated database: a fresh data dir, or a new PostgreSQL database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIRIX_")}
    env["MIRIX_DATA_DIR"] = str(tmp_path / "data")
    if BACKEND == "sqlite":
        yield env, f"sqlite+aiosqlite:///{tmp_path / 'data' / 'mirix.db'}"
        return
    name = f"mirix_e_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    env["MIRIX_PG_URI"] = _pg_url(name)
    try:
        yield env, _pg_url(name).replace("postgresql://", "postgresql+asyncpg://")
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _healthcheck(port: int) -> int:
    process = await asyncio.create_subprocess_exec(
        *healthcheck_command(),
        env={**os.environ, "MIRIX_PORT": str(port)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await asyncio.wait_for(process.wait(), 30)


async def test_entrypoint_migrates_serves_passes_the_healthcheck_and_stops_cleanly(empty_database):
    env, url = empty_database
    port = _free_port()
    env.update(
        MIRIX_HOST="127.0.0.1",
        MIRIX_PORT=str(port),
        MIRIX_LOG_JSON="true",
        MIRIX_JWT_SECRET_KEY="k" * 40,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",  # `mirix` as in the image
    )
    process = await asyncio.create_subprocess_exec(
        str(ENTRYPOINT), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client, asyncio.timeout(90):
            while True:
                try:
                    if (await client.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.returncode is None, (await process.stdout.read()).decode()
                await asyncio.sleep(0.1)
            assert await current_revision(url) is not None, "the entry point migrated the empty database"
            assert await _healthcheck(port) == 0
            assert (await client.get("/metrics")).status_code == 200
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)  # what `docker stop` sends
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    output = out.decode()
    assert process.returncode == 0, output
    assert await _healthcheck(port) != 0, "the health check fails once the server is gone"
    # uvicorn's own lines go through the server's JSON handler like every other line.
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any(r["logger"].startswith("uvicorn") and "startup complete" in r["message"] for r in records), output
    assert any(r["logger"] == "mirix.access" and "GET /health 200" in r["message"] for r in records)


@pytest.mark.postgres_only
async def test_replicas_migrating_at_once_take_turns(empty_database):
    """Replicas started together each run `mirix migrate`; an advisory lock serialises them."""
    _, url = empty_database
    await asyncio.gather(*(upgrade(url) for _ in range(3)))
    assert await current_revision(url) is not None
