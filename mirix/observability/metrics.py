"""Every Prometheus metric of the server, in one registry per ``AsyncServer``.

A registry of its own (not the process-global default) lets several servers live in one process
(tests, embedded use) without clashing. Values that already exist elsewhere (queue depth, pool
usage, a cache's own hit counters) are read when Prometheus scrapes, not copied on every change.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mirix.llm.base import CallRecord

#: LLM and job times are seconds to minutes, far above the default (web request) buckets.
SLOW_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
EMBEDDING_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Model names come from client configurations; past this many distinct ones they are "other",
#: so one client cannot grow the series without bound.
MAX_MODEL_LABELS = 64


class CacheRequests(Collector):
    """``mirix_cache_requests_total{cache, result}``: one family for every cache.

    A cache either counts here (``inc("auth", "hit")``) or is ``watch``-ed: its own counters are
    read at scrape time (the query-embedding LRU keeps ``hits``/``misses`` itself).
    """

    name = "mirix_cache_requests"

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], float] = defaultdict(float)
        self._watched: dict[str, Callable[[], Mapping[str, float]]] = {}

    def inc(self, cache: str, result: str, amount: float = 1.0) -> None:
        self._counts[(cache, result)] += amount

    def watch(self, cache: str, read: Callable[[], Mapping[str, float]]) -> None:
        self._watched[cache] = read

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self.name, "", labels=["cache", "result"])

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            self.name, "Cache lookups by cache and result (hit, miss).", labels=["cache", "result"]
        )
        counts = dict(self._counts)
        for cache, read in self._watched.items():
            for result, value in read().items():
                counts[(cache, result)] = counts.get((cache, result), 0.0) + value
        for (cache, result), value in sorted(counts.items()):
            family.add_metric([cache, result], value)
        yield family


class ServerGauges(Collector):
    """Gauges read from the server when scraped: job queue depth and database pool usage."""

    def __init__(self, server: Any) -> None:
        self._server = server

    def describe(self) -> Iterator[Metric]:
        # Names only: registering must not read a server that is still being built.
        for name in ("mirix_job_queue_depth", "mirix_db_pool_connections", "mirix_db_pool_size"):
            yield GaugeMetricFamily(name, "")

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("mirix_job_queue_depth", "Memory jobs waiting to run in this process.")
        depth.add_metric([], float(self._server.queue.depth()))
        yield depth
        pool = self._server.engine.pool
        if hasattr(pool, "checkedout") and hasattr(pool, "size"):  # QueuePool; NullPool/StaticPool have no counts
            connections = GaugeMetricFamily(
                "mirix_db_pool_connections", "Database connections held by this process.", labels=["state"]
            )
            connections.add_metric(["checked_out"], float(pool.checkedout()))
            connections.add_metric(["idle"], float(pool.checkedin()))
            yield connections
            size = GaugeMetricFamily("mirix_db_pool_size", "Configured size of the database pool (before overflow).")
            size.add_metric([], float(pool.size()))
            yield size


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_duration = Histogram(
            "mirix_http_request_duration_seconds",
            "HTTP request latency by route template, method and status class.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_in_flight = Gauge("mirix_http_requests_in_flight", "HTTP requests being served.", registry=r)
        self.jobs = Counter(
            "mirix_jobs",
            "Memory job runs ended here, by outcome (succeeded, failed, abandoned to another replica).",
            ["outcome"],
            registry=r,
        )
        self.job_duration = Histogram(
            "mirix_job_duration_seconds",
            "Time a worker spent on a memory job, by outcome.",
            ["outcome"],
            buckets=SLOW_BUCKETS,
            registry=r,
        )
        llm_labels = ["provider", "model", "outcome"]
        self.llm_calls = Counter(
            "mirix_llm_calls", "LLM calls (all retries of one call count once).", llm_labels, registry=r
        )
        self.llm_tokens = Counter(
            "mirix_llm_tokens", "LLM tokens by kind (prompt, completion).", ["provider", "model", "kind"], registry=r
        )
        self.llm_duration = Histogram(
            "mirix_llm_call_duration_seconds", "LLM call latency.", llm_labels, buckets=SLOW_BUCKETS, registry=r
        )
        self.embedding_calls = Counter(
            "mirix_embedding_calls", "Embedding provider calls (query-cache hits excluded).", llm_labels, registry=r
        )
        self.embedding_texts = Counter(
            "mirix_embedding_texts", "Texts sent to the embedding provider.", ["provider", "model"], registry=r
        )
        self.embedding_duration = Histogram(
            "mirix_embedding_duration_seconds",
            "Embedding provider call latency.",
            ["provider", "model"],
            buckets=EMBEDDING_BUCKETS,
            registry=r,
        )
        self.cache_requests = CacheRequests()
        r.register(self.cache_requests)
        self._models: set[tuple[str, str]] = set()

    def watch_server(self, server: Any) -> None:
        self.registry.register(ServerGauges(server))

        def query_embedding_cache() -> dict[str, float]:
            # Read through the server each scrape, so a cache swapped in later is still the one read.
            cache = getattr(getattr(server, "embedder", None), "cache", None)
            if cache is None or not hasattr(cache, "hits"):
                return {}
            return {"hit": float(cache.hits), "miss": float(cache.misses)}

        self.cache_requests.watch("query_embedding", query_embedding_cache)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_duration.labels(method, route, f"{status // 100}xx").observe(seconds)

    def observe_job(self, outcome: str, seconds: float) -> None:
        self.jobs.labels(outcome).inc()
        self.job_duration.labels(outcome).observe(seconds)

    def observe_llm_call(self, record: CallRecord) -> None:
        model = self._model_label(record.provider, record.model)
        outcome = "success" if record.ok else "error"
        self.llm_calls.labels(record.provider, model, outcome).inc()
        self.llm_duration.labels(record.provider, model, outcome).observe(record.latency_ms / 1000)
        if record.prompt_tokens:
            self.llm_tokens.labels(record.provider, model, "prompt").inc(record.prompt_tokens)
        if record.completion_tokens:
            self.llm_tokens.labels(record.provider, model, "completion").inc(record.completion_tokens)

    def observe_embedding(self, provider: str, model: str, texts: int, seconds: float, ok: bool) -> None:
        model = self._model_label(provider, model)
        self.embedding_calls.labels(provider, model, "success" if ok else "error").inc()
        self.embedding_texts.labels(provider, model).inc(texts)
        self.embedding_duration.labels(provider, model).observe(seconds)

    def _model_label(self, provider: str, model: str) -> str:
        key = (provider, model)
        if key in self._models:
            return model
        if len(self._models) >= MAX_MODEL_LABELS:
            return "other"
        self._models.add(key)
        return model
