"""The `mirix` command, run as a real process against the test database."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import stat
import sys
from pathlib import Path

import httpx
import pytest

from mirix.settings import Settings

MIRIX = [sys.executable, "-m", "mirix.cli"]


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIRIX_")}
    env["MIRIX_DATA_DIR"] = str(settings.data_dir)
    if settings.database_url:
        env["MIRIX_PG_URI"] = settings.database_url
    return env


async def run_cli(settings: Settings, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *MIRIX,
        *args,
        env=_env(settings),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(stdin.encode() if stdin else None)
    return process.returncode, out.decode(), err.decode()


async def test_keys_create_list_revoke(settings: Settings, http: httpx.AsyncClient):
    code, out, err = await run_cli(
        settings,
        "keys",
        "create",
        "--org",
        "acme",
        "--client",
        "crm",
        "--write-scope",
        "crm",
        "--read-scopes",
        "crm, shared",
    )
    assert code == 0, err
    key = out.strip().splitlines()[-1]
    assert key.startswith("mirix_") and " " not in key
    me = await http.get("/organizations", headers={"X-API-Key": key})
    assert me.status_code == 200 and me.json()[0]["name"] == "acme"
    client = (await http.get("/clients", headers={"X-API-Key": key})).json()[0]
    assert (client["name"], client["write_scope"], client["read_scopes"]) == ("crm", "crm", ["crm", "shared"])

    code, out, _ = await run_cli(settings, "keys", "create", "--org", "acme", "--client", "reader")
    reader_key = out.strip().splitlines()[-1]
    reader = (await http.get("/clients", headers={"X-API-Key": reader_key})).json()[0]
    assert reader["write_scope"] is None and reader["organization_id"] == client["organization_id"]

    code, listing, _ = await run_cli(settings, "keys", "list")
    assert code == 0 and key not in listing and reader_key not in listing
    key_id = next(line.split()[0] for line in listing.splitlines() if "crm" in line)
    assert key[:12] in listing  # the prefix helps people tell keys apart

    code, out, _ = await run_cli(settings, "keys", "revoke", key_id)
    assert code == 0 and key_id in out
    assert (await http.get("/organizations", headers={"X-API-Key": key})).status_code == 401
    code, _, err = await run_cli(settings, "keys", "revoke", key_id)
    assert code == 1 and "no active key" in err
    assert "revoked" in (await run_cli(settings, "keys", "list"))[1]


async def test_admin_create_then_login(settings: Settings, http: httpx.AsyncClient):
    code, out, err = await run_cli(
        settings,
        "admin",
        "create",
        "--email",
        "ops@example.com",
        "--name",
        "Ops",
        "--org",
        "acme",
        "--password",
        "long enough pw",
    )
    assert code == 0, err
    login = await http.post("/admin/auth/login", json={"email": "ops@example.com", "password": "long enough pw"})
    assert login.status_code == 200
    code, _, err = await run_cli(
        settings, "admin", "create", "--email", "x@example.com", "--name", "X", "--password", "short"
    )
    assert code != 0 and "8 characters" in err


async def test_migrate_on_empty_data_dir(tmp_path: Path):
    fresh = Settings(_env_file=None, data_dir=tmp_path / "fresh")
    code, out, err = await run_cli(fresh, "migrate")
    assert code == 0, err
    assert "database at revision" in out and (tmp_path / "fresh" / "mirix.db").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _start_serve(settings: Settings, port: int) -> tuple[asyncio.subprocess.Process, list[str]]:
    process = await asyncio.create_subprocess_exec(
        *MIRIX,
        "serve",
        "--port",
        str(port),
        env=_env(settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    lines: list[str] = []
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                if (await client.get(f"http://127.0.0.1:{port}/health")).status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
        else:
            process.kill()
            pytest.fail("server did not start: " + (await process.stdout.read()).decode())
    return process, lines


async def _stop(process: asyncio.subprocess.Process) -> str:
    process.send_signal(signal.SIGINT)
    out, _ = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0, out.decode()
    return out.decode()


async def test_serve_bootstraps_an_empty_database_once(settings: Settings):
    port = _free_port()
    process, _ = await _start_serve(settings, port)
    key_file = settings.data_dir / "api_key"
    key = key_file.read_text().strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": key}) as client:
        client_row = (await client.get("/clients")).json()[0]
        assert (client_row["write_scope"], client_row["read_scopes"]) == ("default", ["default"])
        users = (await client.get("/users")).json()
        assert len(users) == 1
        assert (await client.get("/users", headers={"X-API-Key": "mirix_wrong"})).status_code == 401
    output = await _stop(process)
    assert key in output.splitlines(), "the first start prints the key on a line of its own"

    process, _ = await _start_serve(settings, port)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": key}) as client:
        assert (await client.get("/users")).status_code == 200
    output = await _stop(process)
    assert "API key" not in output and key_file.read_text().strip() == key


def test_serve_runs_on_uvloop_when_it_is_installed():
    import uvloop

    from mirix.cli import _loop_factory

    loop = _loop_factory()()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()
