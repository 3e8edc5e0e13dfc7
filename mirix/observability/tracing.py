"""Optional OpenTelemetry tracing (``MIRIX_OTEL_ENABLED``, the ``otel`` extra); off by default.

Requests and outgoing httpx calls are traced by the OpenTelemetry instrumentations; every LLM call
becomes a span with the GenAI attributes (model, tokens), which Langfuse and other LLM tools read
from plain OTLP. Where spans go is set the standard way: ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), ``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_SERVICE_NAME``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from mirix.llm.base import CallRecord
from mirix.settings import Settings

#: The process's tracer provider once tracing is set up (OpenTelemetry's provider is process-wide).
_provider: Any = None


def setup_tracing(app: Any, settings: Settings, *, span_processor: Any = None) -> bool:
    """Instrument ``app`` when tracing is enabled; ``span_processor`` replaces the OTLP exporter (tests)."""
    global _provider
    if not settings.otel_enabled:
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise RuntimeError("MIRIX_OTEL_ENABLED needs the otel extra: pip install 'mirix-server[otel]'") from exc
    if _provider is None:
        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "mirix")})
        _provider = TracerProvider(resource=resource)
        trace.set_tracer_provider(_provider)
        for instrumentor in _http_instrumentors():
            instrumentor.instrument(tracer_provider=_provider)
        if span_processor is None:
            _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if span_processor is not None:
        _provider.add_span_processor(span_processor)
    FastAPIInstrumentor.instrument_app(app, tracer_provider=_provider, excluded_urls="/health,/metrics")
    return True


def shutdown_tracing() -> None:
    """Flush and stop tracing, and un-patch the HTTP clients (process shutdown, tests)."""
    global _provider
    if _provider is None:
        return
    for instrumentor in _http_instrumentors():
        instrumentor.uninstrument()
    _provider.shutdown()
    _provider = None


def _http_instrumentors() -> list[Any]:
    # The OpenAI SDK moved to httpx2; both clients are patched where they are installed.
    from opentelemetry.instrumentation import httpx as otel_httpx

    names = ("HTTPXClientInstrumentor", "HTTPX2ClientInstrumentor")
    return [getattr(otel_httpx, name)() for name in names if hasattr(otel_httpx, name)]


def record_llm_span(record: CallRecord) -> None:
    """One span per LLM call, back-dated by its latency (the call has ended when it is recorded)."""
    if _provider is None:
        return
    from opentelemetry.trace import SpanKind, Status, StatusCode

    ended = time.time_ns()
    attributes = {
        "gen_ai.system": record.provider,
        "gen_ai.request.model": record.model,
        "gen_ai.usage.input_tokens": record.prompt_tokens,
        "gen_ai.usage.output_tokens": record.completion_tokens,
        "mirix.llm.attempts": record.attempts,
        "mirix.llm.streamed": record.streamed,
    }
    if record.finish_reason:
        attributes["gen_ai.response.finish_reasons"] = [record.finish_reason]
    for key in ("job_id", "agent", "organization_id"):
        if record.metadata.get(key):
            attributes[f"mirix.{key}"] = str(record.metadata[key])
    span = _provider.get_tracer("mirix.llm").start_span(
        f"chat {record.model}",
        kind=SpanKind.CLIENT,
        start_time=ended - int(record.latency_ms * 1_000_000),
        attributes=attributes,
    )
    if not record.ok:
        span.set_status(Status(StatusCode.ERROR, record.error_type or "error"))
    span.end(end_time=ended)
