"""Request metrics as plain ASGI middleware: one timer and a status capture, no body buffering."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Label of requests no route matched (404s, probes of random paths): never the raw path.
UNMATCHED = "<unmatched>"


class MetricsMiddleware:
    """Observes latency per route *template* (``/memory/{memory_type}/{memory_id}``), method and
    status class. The router writes the matched route into the shared scope, so it is known once
    the inner app returns."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        server = getattr(scope["app"].state, "server", None) if "app" in scope else None
        metrics = getattr(server, "metrics", None)
        if metrics is None:  # before the lifespan has built the server
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        metrics.http_in_flight.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            metrics.http_in_flight.dec()
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            metrics.observe_request(scope["method"], route, status, time.perf_counter() - started)
