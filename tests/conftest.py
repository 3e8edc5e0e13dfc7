"""Shared fixtures: a freshly migrated database per test, a started server, HTTP clients and tenants.

The backend comes from ``MIRIX_TEST_DB`` (``sqlite``, the default, or ``postgres`` with
``MIRIX_TEST_PG_URI`` pointing at a real server; ``scripts/test.sh`` starts one). Migrations run
once per session into a template; each test gets its own copy of it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mirix.api.app import create_app
from mirix.db.migrate import upgrade
from mirix.server.server import AsyncServer
from mirix.settings import Settings
from tests.support import Tenant, create_tenant

BACKEND = os.environ.get("MIRIX_TEST_DB", "sqlite")
PG_URI = os.environ.get("MIRIX_TEST_PG_URI")
JWT_SECRET = "test-secret-" + "x" * 32

if BACKEND not in ("sqlite", "postgres"):
    raise RuntimeError(f"MIRIX_TEST_DB must be sqlite or postgres, not {BACKEND!r}")
if BACKEND == "postgres" and not PG_URI:
    raise RuntimeError("MIRIX_TEST_DB=postgres needs MIRIX_TEST_PG_URI (scripts/test.sh sets it)")


def pytest_report_header(config: pytest.Config) -> str:
    return f"mirix test database: {BACKEND}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of one dialect's own structures run in that dialect's pass only (deselected, not skipped)."""
    other = "sqlite_only" if BACKEND == "postgres" else "postgres_only"
    keep = [item for item in items if item.get_closest_marker(other) is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in keep])
        items[:] = keep


def _pg_url(database: str) -> str:
    base = PG_URI.rsplit("/", 1)[0]
    return f"{base}/{database}"


async def _pg_admin(*statements: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(PG_URI.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated empty database to copy: a file path on SQLite, a database name on PostgreSQL."""
    if BACKEND == "sqlite":
        path = tmp_path_factory.mktemp("template") / "mirix.db"
        asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}"))
        yield str(path)
        return
    name = f"mirix_tpl_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    asyncio.run(upgrade(_pg_url(name).replace("postgresql://", "postgresql+asyncpg://")))
    yield name
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def database_url(template: str, tmp_path: Path) -> AsyncIterator[str | None]:
    """The test's own database: ``None`` means SQLite in the test's data dir."""
    if BACKEND == "sqlite":
        shutil.copyfile(template, tmp_path / "mirix.db")
        yield None
        return
    name = f"mirix_t_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield _pg_url(name)
    await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=tmp_path,
        database_url=database_url,
        auto_migrate=False,
        bootstrap=False,
        jwt_secret_key=JWT_SECRET,
        trusted_gateway=False,
    )


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[AsyncServer]:
    server = await AsyncServer.start(settings)
    yield server
    await server.close()


@pytest.fixture
async def workers(server: AsyncServer) -> AsyncIterator[AsyncServer]:
    """The server with its job workers running (memory jobs get processed)."""
    await server.start_workers()
    yield server
    await server.stop_workers()


@pytest.fixture
async def http(server: AsyncServer) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the app (no credentials; tenants carry their own headers)."""
    app = create_app(server=server)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mirix.test") as client:
        yield client


@pytest.fixture
async def tenant(server: AsyncServer) -> Tenant:
    return await create_tenant(server, "acme")


@pytest.fixture
async def other_tenant(server: AsyncServer) -> Tenant:
    return await create_tenant(server, "globex")


@pytest.fixture
async def admin_headers(server: AsyncServer, tenant: Tenant) -> dict[str, str]:
    """An admin of ``tenant``'s organization, logged in."""
    await server.admins.create(tenant.org_id, "Ada Admin", "ada@acme.test", "correct horse battery")
    _, _, token = await server.admins.login("ada@acme.test", "correct horse battery")
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def kafka_bootstrap() -> str:
    """The Kafka-compatible broker ``scripts/test.sh`` starts (never skipped: a missing broker fails)."""
    bootstrap = os.environ.get("MIRIX_TEST_KAFKA_BOOTSTRAP")
    if not bootstrap:
        pytest.fail(
            "MIRIX_TEST_KAFKA_BOOTSTRAP is not set: scripts/test.sh starts a broker (see _start_kafka in "
            "scripts/services.sh to start one by hand)"
        )
    return bootstrap
