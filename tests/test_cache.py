"""The cache and rate limits: in-process and through a real Redis, with two server "replicas" on one
database and one Redis, a Redis that dies and comes back, and queries counted at the engine."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from redis.asyncio import Redis

from mirix.api.app import create_app
from mirix.cache import INVALIDATION_GRACE_SECONDS, RateLimiter
from mirix.cache.redis_cache import RedisCache
from mirix.server.server import AsyncServer
from mirix.settings import Settings
from tests.fakes import FakeProvider, RecordedRequest, Reply
from tests.support import create_tenant, queries

CORE = "/memory/components?user_id=alice&memory_type=core"


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("MIRIX_TEST_REDIS_URL")
    if not url:
        pytest.fail("MIRIX_TEST_REDIS_URL is not set: run the tests with scripts/test.sh, which starts redis-server")
    return url


@pytest.fixture
async def redis_settings(settings: Settings, redis_url: str) -> AsyncIterator[Settings]:
    """The test's settings with Redis, under a key prefix of its own (removed afterwards)."""
    prefix = f"mirix-test-{uuid.uuid4().hex[:12]}:"
    yield settings.model_copy(update={"redis_url": redis_url, "redis_prefix": prefix})
    client = Redis.from_url(redis_url)
    keys = [key async for key in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def start_replica(redis_settings: Settings):
    """Start a server (a "replica") on the test's database and Redis; returns it and an HTTP client."""
    started: list[tuple[AsyncServer, httpx.AsyncClient]] = []

    async def start(**overrides) -> tuple[AsyncServer, httpx.AsyncClient]:
        server = await AsyncServer.start(redis_settings.model_copy(update=overrides))
        transport = httpx.ASGITransport(app=create_app(server=server))
        started.append((server, httpx.AsyncClient(transport=transport, base_url="http://mirix.test")))
        return started[-1]

    yield start
    for server, client in started:
        await client.aclose()
        await server.close()


async def ok(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> dict:
    response = await http.get(url, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def seed_alice(http: httpx.AsyncClient, headers: dict[str, str]) -> None:
    user = {"user_id": "alice", "timezone": "Europe/Paris"}
    assert (await http.post("/users/create_or_get", json=user, headers=headers)).status_code == 200
    block = {"block": {"label": "human", "value": "likes tea"}, "user": {"id": "alice"}}
    assert (await http.post("/blocks", json=block, headers=headers)).status_code == 200


def core_values(components: dict) -> list[str]:
    return [item["value"] for scope in components["memories"]["core"]["scopes"].values() for item in scope["items"]]


# --- Redis: reads without the database -------------------------------------------------------------


async def test_cached_requests_cost_no_database_query(start_replica):
    server, http = await start_replica()
    tenant = await create_tenant(server, "acme")
    await seed_alice(http, tenant.headers)
    await asyncio.sleep(INVALIDATION_GRACE_SECONDS)  # the writes above keep their keys unfilled this long
    urls = ["/memory/fields", "/users/alice", CORE]
    for url in urls:
        await ok(http, url, tenant.headers)  # fills the cache (and writes last_used_at once)
    with queries(server) as seen:
        for url in urls:
            body = await ok(http, url, tenant.headers)
    assert seen == []
    assert core_values(body) == ["likes tea"]
    assert server.cache.hits["auth"] >= 3 and server.cache.hits["user"] >= 1 and server.cache.hits["blocks"] >= 1
    assert 'mirix_cache_requests_total{cache="auth",result="hit"}' in (await http.get("/metrics")).text
    # What a hit returns is what the database says.
    assert (await ok(http, "/users/alice", tenant.headers))["timezone"] == "Europe/Paris"
    assert await server.users.timezone_of(tenant.actor, "alice") == "Europe/Paris"


async def test_revoking_a_key_on_one_replica_fails_it_on_the_other_at_once(start_replica):
    a, http_a = await start_replica()
    b, http_b = await start_replica()
    tenant = await create_tenant(a, "acme")
    await a.admins.create(tenant.org_id, "Ada", "ada@acme.test", "correct horse battery")
    _, _, token = await a.admins.login("ada@acme.test", "correct horse battery")
    admin = {"Authorization": f"Bearer {token}"}
    await ok(http_b, "/memory/fields", tenant.headers)
    with queries(b) as seen:
        await ok(http_b, "/memory/fields", tenant.headers)
    assert seen == [], "the key is cached in Redis"

    response = await http_a.delete(f"/clients/{tenant.client_id}/api-keys/{tenant.key_id}", headers=admin)
    assert response.status_code == 200, response.text
    assert (await http_b.get("/memory/fields", headers=tenant.headers)).status_code == 401
    assert (await http_a.get("/memory/fields", headers=tenant.headers)).status_code == 401


async def test_client_changes_on_one_replica_reach_the_other(start_replica):
    a, http_a = await start_replica()
    b, http_b = await start_replica()
    tenant = await create_tenant(a, "acme")
    await a.admins.create(tenant.org_id, "Ada", "ada@acme.test", "correct horse battery")
    _, _, token = await a.admins.login("ada@acme.test", "correct horse battery")
    admin = {"Authorization": f"Bearer {token}"}
    await ok(http_b, "/memory/fields", tenant.headers)

    patch = await http_a.patch(f"/clients/{tenant.client_id}", json={"read_scopes": ["default", "crm"]}, headers=admin)
    assert patch.status_code == 200, patch.text
    assert (await ok(http_b, "/memory/search_all_users?query=x", tenant.headers))["read_scopes"] == ["default", "crm"]
    patch = await http_a.patch(f"/clients/{tenant.client_id}", json={"status": "inactive"}, headers=admin)
    assert patch.status_code == 200, patch.text
    assert (await http_b.get("/memory/fields", headers=tenant.headers)).status_code == 403


async def test_user_and_block_changes_on_one_replica_reach_the_other(start_replica):
    a, http_a = await start_replica()
    b, http_b = await start_replica()
    tenant = await create_tenant(a, "acme")
    await seed_alice(http_a, tenant.headers)
    block_id = (await http_a.get("/blocks?user_id=alice", headers=tenant.headers)).json()[0]["id"]
    await asyncio.sleep(INVALIDATION_GRACE_SECONDS)
    assert core_values(await ok(http_b, CORE, tenant.headers)) == ["likes tea"]
    assert core_values(await ok(http_b, CORE, tenant.headers)) == ["likes tea"]
    assert b.cache.hits["blocks"] >= 1

    update = {"block": {"id": block_id, "label": "human", "value": "likes coffee"}, "user": {"id": "alice"}}
    assert (await http_a.post("/blocks", json=update, headers=tenant.headers)).status_code == 200
    assert core_values(await ok(http_b, CORE, tenant.headers)) == ["likes coffee"]
    assert (await http_a.delete(f"/blocks/{block_id}", headers=tenant.headers)).status_code == 200
    assert core_values(await ok(http_b, CORE, tenant.headers)) == []

    await ok(http_b, "/users/alice", tenant.headers)
    assert (await http_a.delete("/users/alice", headers=tenant.headers)).status_code == 200
    assert (await http_b.get("/users/alice", headers=tenant.headers)).status_code == 404


def core_agent(request: RecordedRequest) -> Reply:
    if "core_memory_append" in request.tools:
        return Reply.tool_call("core_memory_append", {"label": "human", "content": "Has a dog named Rex"})
    return Reply.tool_call("finish_memory_update", {})


async def test_blocks_written_by_a_memory_job_reach_the_other_replica(start_replica):
    a, http_a = await start_replica()
    b, http_b = await start_replica()
    tenant = await create_tenant(a, "acme")
    template = {"block": {"label": "human", "value": "Likes tea."}, "user": None}
    assert (await http_a.post("/blocks", json=template, headers=tenant.headers)).status_code == 200
    assert core_values(await ok(http_b, CORE, tenant.headers)) == []  # alice has no blocks yet: cached empty
    async with FakeProvider(responder=core_agent) as fake:
        llm = {"model": "gpt-test", "model_endpoint_type": "openai", "model_endpoint": fake.openai_base_url}
        llm["api_key"] = "sk-test"
        config = {"config": {"llm_config": llm}}
        init = await http_a.post("/agents/meta/initialize", json=config, headers=tenant.headers)
        assert init.status_code == 200, init.text
        await a.start_workers()
        messages = [{"role": "user", "content": "I adopted Rex"}]
        body = {"user_id": "alice", "messages": messages, "memory_types": ["core"]}
        response = await http_a.post("/memory/add_sync", json=body, headers=tenant.headers)
        assert response.status_code == 200, response.text
    (value,) = core_values(await ok(http_b, CORE, tenant.headers))
    assert "Has a dog named Rex" in value


async def test_query_embeddings_are_shared_between_replicas(start_replica):
    a, _ = await start_replica()
    b, _ = await start_replica()
    first = await a.embedder.embed_query("where did I park the car")
    again = await b.embedder.embed_query("where did I park the car")
    assert again == first and b.cache.hits["embedding"] == 1


# --- Redis going away and coming back ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1"]
        + ["--save", "", "--appendonly", "no", "--daemonize", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.02)
    process.kill()
    raise RuntimeError(f"redis-server did not start on port {port}")


@pytest.fixture
def own_redis() -> Iterator[dict]:
    """A redis-server of this test's own, which it may kill and restart on the same port."""
    port = free_port()
    state = {"port": port, "process": start_redis(port)}
    yield state
    state["process"].kill()
    state["process"].wait()


async def health(http: httpx.AsyncClient) -> dict:
    response = await http.get("/health")
    assert response.status_code == 200, response.text
    return response.json()


async def test_redis_outage_serves_from_the_database_and_recovers(settings, own_redis):
    url = f"redis://127.0.0.1:{own_redis['port']}/0"
    server = await AsyncServer.start(settings.model_copy(update={"redis_url": url}))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(server=server)), base_url="http://t")
    try:
        tenant = await create_tenant(server, "acme")
        await ok(http, "/memory/fields", tenant.headers)
        await ok(http, "/memory/fields", tenant.headers)
        assert server.cache.hits["auth"] == 1
        assert await health(http) == {"status": "healthy", "service": "mirix-api", "database": "ok", "cache": "ok"}

        own_redis["process"].kill()
        own_redis["process"].wait()
        with queries(server) as seen:
            for _ in range(20):
                await ok(http, "/memory/fields", tenant.headers)
        assert len(seen) >= 20, "every request was authenticated from the database"
        # 40 cache calls (a lookup and a fill per request), but the breaker let only the first one
        # (or a probe or two on a slow machine) try Redis.
        assert 1 <= server.cache.redis.failures <= 3
        body = await health(http)
        assert body["status"] == "degraded" and body["cache"] == "down" and body["database"] == "ok"
        assert server.cache.hits["auth"] == 1

        own_redis["process"] = start_redis(own_redis["port"])
        for _ in range(100):  # the breaker lets a probe through after a second or two
            if (await health(http))["cache"] == "ok":
                break
            await asyncio.sleep(0.1)
        assert (await health(http))["status"] == "healthy"
        await ok(http, "/memory/fields", tenant.headers)  # refills the new, empty Redis
        with queries(server) as seen:
            await ok(http, "/memory/fields", tenant.headers)
        assert seen == [] and server.cache.hits["auth"] == 2
    finally:
        await http.aclose()
        await server.close()


async def test_a_hung_redis_costs_one_timeout_then_is_skipped(settings, own_redis):
    url = f"redis://127.0.0.1:{own_redis['port']}/0"
    server = await AsyncServer.start(settings.model_copy(update={"redis_url": url}))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(server=server)), base_url="http://t")
    try:
        tenant = await create_tenant(server, "acme")
        await ok(http, "/memory/fields", tenant.headers)
        own_redis["process"].send_signal(signal.SIGSTOP)  # accepts nothing, answers nothing
        for _ in range(10):
            await ok(http, "/memory/fields", tenant.headers)
        assert 1 <= server.cache.redis.failures <= 2  # one socket timeout, then the breaker skips Redis
        assert (await health(http))["status"] == "degraded"
        own_redis["process"].send_signal(signal.SIGCONT)
        for _ in range(100):
            if (await health(http))["cache"] == "ok":
                break
            await asyncio.sleep(0.1)
        assert (await health(http))["status"] == "healthy"
    finally:
        own_redis["process"].send_signal(signal.SIGCONT)
        await http.aclose()
        await server.close()


async def test_invalidations_missed_while_redis_was_unreachable_are_sent_when_it_is_back(own_redis):
    url = f"redis://127.0.0.1:{own_redis['port']}/0"
    cache = RedisCache(url, retry_seconds=0.05)
    assert await cache.ping()
    own_redis["process"].kill()
    own_redis["process"].wait()
    other = None
    try:
        await cache.invalidate(["auth:k"])  # fails: kept for later
        assert not cache.available
        own_redis["process"] = start_redis(own_redis["port"])
        other = RedisCache(url)  # another replica, which reached Redis all along
        await other.add("auth:k", {"key_id": "x"}, 60)  # the entry this replica failed to invalidate
        assert await other.get("auth:k") == {"key_id": "x"}
        await asyncio.sleep(0.1)
        assert await cache.ping()  # the first call after the outage sends the pending invalidation first
        assert await other.get("auth:k") is None
    finally:
        await cache.aclose()
        if other is not None:
            await other.aclose()


# --- rate limits ----------------------------------------------------------------------------------


async def assert_limited(http: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await http.get("/memory/fields", headers=headers)
    assert response.status_code == 429, response.text
    assert response.headers["Retry-After"] == "1"
    assert response.json()["detail"].startswith("Rate limit exceeded")


async def test_rate_limit_in_process(settings):
    server = await AsyncServer.start(settings.model_copy(update={"rate_limit_per_second": 4, "rate_limit_burst": 2}))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(server=server)), base_url="http://t")
    try:
        tenant = await create_tenant(server, "acme")
        other = await create_tenant(server, "globex")
        await ok(http, "/memory/fields", other.headers)  # the first request of an app is slow: not timed
        await ok(http, "/memory/fields", tenant.headers)
        await ok(http, "/memory/fields", tenant.headers)
        await assert_limited(http, tenant.headers)
        await ok(http, "/memory/fields", other.headers)  # per client
        await health(http)  # never limited
        assert (await http.get("/metrics")).status_code == 200
        await asyncio.sleep(0.3)  # one token refills in 0.25 s
        await ok(http, "/memory/fields", tenant.headers)
    finally:
        await http.aclose()
        await server.close()


async def test_rate_limit_is_shared_through_redis(start_replica):
    a, http_a = await start_replica(rate_limit_per_second=4, rate_limit_burst=2)
    b, http_b = await start_replica(rate_limit_per_second=4, rate_limit_burst=2)
    tenant = await create_tenant(a, "acme")
    other = await create_tenant(a, "globex")
    for http in (http_a, http_b):  # the first request of an app is slow (FastAPI builds its routes)
        await ok(http, "/memory/fields", other.headers)
    await ok(http_a, "/memory/fields", tenant.headers)
    await ok(http_b, "/memory/fields", tenant.headers)
    await assert_limited(http_a, tenant.headers)
    await assert_limited(http_b, tenant.headers)
    await asyncio.sleep(0.3)
    await ok(http_b, "/memory/fields", tenant.headers)
    await assert_limited(http_a, tenant.headers)


async def test_rate_limit_falls_back_to_the_process_while_redis_is_down():
    redis = RedisCache(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    try:
        limiter = RateLimiter(4, 2, redis)
        assert [await limiter.take("client-1") for _ in range(2)] == [0, 0]
        assert 0 < await limiter.take("client-1") <= 0.25
        assert not redis.available
    finally:
        await redis.aclose()


# --- in-process cache ---------------------------------------------------------------------------


async def test_in_process_cache_keeps_auth_uncached_by_default(server, http, tenant):
    await seed_alice(http, tenant.headers)
    await asyncio.sleep(INVALIDATION_GRACE_SECONDS)
    for url in ("/users/alice", CORE):
        await ok(http, url, tenant.headers)
    with queries(server) as seen:
        await ok(http, "/users/alice", tenant.headers)
        assert core_values(await ok(http, CORE, tenant.headers)) == ["likes tea"]
    # One query per request, and it is the API-key lookup: another process may revoke keys.
    assert len(seen) == 2 and all("api_keys" in statement for statement in seen)
    assert server.cache.hits["auth"] == 0 and server.cache.hits["user"] >= 1 and server.cache.hits["blocks"] >= 1
    await server.clients.revoke_api_key_by_id(tenant.key_id)
    assert (await http.get("/users/alice", headers=tenant.headers)).status_code == 401


async def test_in_process_auth_cache_when_asked_for_is_invalidated_in_process(settings):
    server = await AsyncServer.start(settings.model_copy(update={"cache_local_auth_ttl_seconds": 5}))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(server=server)), base_url="http://t")
    try:
        tenant = await create_tenant(server, "acme")
        await ok(http, "/memory/fields", tenant.headers)
        with queries(server) as seen:
            await ok(http, "/memory/fields", tenant.headers)
        assert seen == []
        await server.clients.revoke_api_key_by_id(tenant.key_id)
        assert (await http.get("/memory/fields", headers=tenant.headers)).status_code == 401
    finally:
        await http.aclose()
        await server.close()


async def test_health_reports_the_in_process_cache_as_ok(http):
    assert await health(http) == {"status": "healthy", "service": "mirix-api", "database": "ok", "cache": "ok"}
