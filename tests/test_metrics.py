"""Observability: /metrics after real requests, jobs and LLM calls; job ids in log lines; tracing."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections import defaultdict

import httpx
import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mirix.api.app import create_app
from mirix.logs import make_handler
from mirix.observability import tracing
from mirix.server.server import AsyncServer
from tests.fakes import FakeProvider, Fault
from tests.test_pipeline import add, initialize, route_and_extract, wait_job


@pytest.fixture
async def fake():
    async with FakeProvider(responder=route_and_extract) as provider:
        yield provider


async def scrape(http: httpx.AsyncClient) -> tuple[str, dict[str, list]]:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, list] = defaultdict(list)
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[sample.name].append(sample)
    return response.text, samples


def value(samples: dict[str, list], name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    return sum(s.value for s in samples.get(name, []) if labels.items() <= s.labels.items())


async def scrape_until(http, name: str, minimum: float = 1, **labels: str) -> dict[str, list]:
    """Job metrics are observed just after the job's commit, so a poller may see the job first."""
    async with asyncio.timeout(10):
        while True:
            _, samples = await scrape(http)
            if value(samples, name, **labels) >= minimum:
                return samples
            await asyncio.sleep(0.02)


async def test_metrics_cover_requests_jobs_llm_embeddings_pool_and_caches(http, server, tenant, fake, workers):
    await initialize(http, tenant, fake)
    job_id = await add(http, tenant, "I adopted a beagle called Rex.")
    job = await wait_job(http, tenant, job_id)
    assert job["status"] == "succeeded", job
    search = {"user_id": "alice", "query": "beagle", "search_method": "embedding"}
    for _ in range(2):  # the second search embeds nothing: its query vector comes from the cache
        assert (await http.get("/memory/search", params=search, headers=tenant.headers)).status_code == 200
    memory_id = job["written_ids"][0]
    history = await http.get(f"/memory/episodic/{memory_id}/history", headers=tenant.headers)
    assert history.status_code in (200, 404)
    assert (await http.get("/no/such/thing/42")).status_code == 404
    server.metrics.cache_requests.inc("redis", "hit")  # the hook the shared cache counts through

    samples = await scrape_until(http, "mirix_jobs_total", outcome="succeeded")
    text, samples = await scrape(http)
    duration = "mirix_http_request_duration_seconds_count"
    assert value(samples, duration, method="POST", route="/memory/add", status="2xx") == 1
    assert value(samples, duration, method="GET", route="/memory/jobs/{job_id}", status="2xx") >= 1
    assert value(samples, duration, method="GET", route="/memory/search", status="2xx") == 2
    assert value(samples, duration, route="/memory/episodic/{memory_id}/history") == 1
    assert value(samples, duration, method="GET", route="<unmatched>", status="4xx") == 1
    routes = {s.labels["route"] for s in samples[duration]}
    assert not any(job_id in r or memory_id in r or "42" in r for r in routes), routes
    assert value(samples, "mirix_http_requests_in_flight") == 1  # this scrape itself

    assert value(samples, "mirix_jobs_total", outcome="succeeded") == 1
    assert value(samples, "mirix_job_duration_seconds_count", outcome="succeeded") == 1
    assert value(samples, "mirix_job_queue_depth") == 0

    llm = {"provider": "openai", "model": "gpt-test"}
    assert value(samples, "mirix_llm_calls_total", outcome="success", **llm) == job["llm_calls"] == 3
    assert value(samples, "mirix_llm_tokens_total", kind="prompt", **llm) == job["prompt_tokens"]
    assert value(samples, "mirix_llm_tokens_total", kind="completion", **llm) == job["completion_tokens"]
    assert value(samples, "mirix_llm_call_duration_seconds_count", outcome="success", **llm) == 3

    embedder = {"provider": server.embedder.provider.provider, "model": server.embedder.model}
    assert value(samples, "mirix_embedding_calls_total", outcome="success", **embedder) >= 2
    assert value(samples, "mirix_embedding_texts_total", **embedder) >= 3  # two memories, one query
    assert value(samples, "mirix_embedding_duration_seconds_count", **embedder) >= 2

    assert value(samples, "mirix_cache_requests_total", cache="query_embedding", result="hit") >= 1
    assert value(samples, "mirix_cache_requests_total", cache="query_embedding", result="miss") >= 1
    assert value(samples, "mirix_cache_requests_total", cache="redis", result="hit") == 1

    assert value(samples, "mirix_db_pool_size") >= 1
    assert {s.labels["state"] for s in samples["mirix_db_pool_connections"]} == {"checked_out", "idle"}
    assert "# TYPE mirix_http_request_duration_seconds histogram" in text


async def test_failed_jobs_and_llm_errors_are_counted(http, tenant, fake, workers):
    await initialize(http, tenant, fake)
    fake.responder = lambda request: Fault.status(400, "malformed request")  # not retried
    job = await wait_job(http, tenant, await add(http, tenant, "I lost my keys.", memory_types=["episodic"]))
    assert job["status"] == "failed", job
    samples = await scrape_until(http, "mirix_jobs_total", outcome="failed")
    assert value(samples, "mirix_jobs_total", outcome="succeeded") == 0
    assert value(samples, "mirix_job_duration_seconds_count", outcome="failed") == 1
    assert value(samples, "mirix_llm_calls_total", outcome="error", model="gpt-test") >= 1
    assert value(samples, "mirix_llm_calls_total", outcome="success") == 0


async def test_each_server_has_its_own_registry(server, settings):
    other = AsyncServer(settings)
    try:
        server.metrics.observe_job("succeeded", 0.5)
        ours = generate_latest(server.metrics.registry).decode()
        theirs = generate_latest(other.metrics.registry).decode()
        assert 'mirix_jobs_total{outcome="succeeded"} 1.0' in ours
        assert "mirix_jobs_total{" not in theirs
        assert b"mirix_jobs_total" not in generate_latest(REGISTRY), "the process-global registry stays untouched"
    finally:
        await other.close()


async def test_job_log_lines_carry_the_job_and_the_request_that_queued_it(http, tenant, fake, workers):
    stream = io.StringIO()
    handler = make_handler(as_json=True, stream=stream)
    logger = logging.getLogger("mirix")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        await initialize(http, tenant, fake)
        body = {"user_id": "alice", "messages": [{"role": "user", "content": "I ran 5k."}]}
        body["memory_types"] = ["episodic"]
        headers = {**tenant.headers, "X-Request-ID": "req-logs-1"}
        response = await http.post("/memory/add", json=body, headers=headers)
        job_id = response.json()["job_id"]
        assert (await wait_job(http, tenant, job_id))["status"] == "succeeded"
        async with asyncio.timeout(10):  # the job logs its end just after committing it
            while True:
                if f"job {job_id} succeeded" in stream.getvalue():
                    break
                await asyncio.sleep(0.02)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    done = next(line for line in lines if line["message"] == f"job {job_id} succeeded")
    assert (done["job_id"], done["request_id"]) == (job_id, "req-logs-1")
    access = next(line for line in lines if line["logger"] == "mirix.access" and "/memory/add" in line["message"])
    assert access["request_id"] == "req-logs-1" and "job_id" not in access


async def test_tracing_spans_requests_http_calls_and_llm_calls(server, tenant, fake, workers, monkeypatch):
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    assert not tracing.setup_tracing(create_app(server=server), server.settings), "off by default"
    monkeypatch.setattr(tracing, "_provider", None)  # restored (off) after the test
    exporter = InMemorySpanExporter()
    app = create_app(server=server)
    enabled = server.settings.model_copy(update={"otel_enabled": True})
    assert tracing.setup_tracing(app, enabled, span_processor=SimpleSpanProcessor(exporter))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mirix.test") as http:
            await initialize(http, tenant, fake)
            job_id = await add(http, tenant, "I ran 5k today.", memory_types=["episodic"])
            assert (await wait_job(http, tenant, job_id))["status"] == "succeeded"
            assert (await http.get("/health")).status_code == 200
    finally:
        tracing.shutdown_tracing()
    spans = exporter.get_finished_spans()
    routes = {span.attributes.get("http.route") for span in spans if span.kind == SpanKind.SERVER}
    assert {"/memory/add", "/memory/jobs/{job_id}"} <= routes and "/health" not in routes
    llm = [span for span in spans if span.name == "chat gpt-test"]
    assert len(llm) == 1 and llm[0].attributes["mirix.job_id"] == job_id
    assert llm[0].attributes["gen_ai.usage.input_tokens"] > 0 and llm[0].attributes["gen_ai.system"] == "openai"
    outgoing = [span for span in spans if span.kind == SpanKind.CLIENT and span is not llm[0]]
    urls = [str(span.attributes.get("url.full", span.attributes.get("http.url"))) for span in outgoing]
    assert any(url.startswith(fake.openai_base_url) for url in urls), urls
