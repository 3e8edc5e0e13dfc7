"""Metrics (Prometheus, one registry per server), request timing middleware, optional tracing."""

from mirix.observability.metrics import Metrics
from mirix.observability.middleware import MetricsMiddleware

__all__ = ["Metrics", "MetricsMiddleware"]
