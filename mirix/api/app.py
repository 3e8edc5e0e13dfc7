"""The FastAPI application factory and its lifespan."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from mirix import __version__
from mirix.api.errors import install_error_handlers
from mirix.api.middleware import RequestIdMiddleware
from mirix.api.routers import (
    admin,
    agent_messages,
    agents,
    blocks,
    clients,
    config,
    health,
    memory,
    memory_write,
    metrics,
    organizations,
    raw_memory,
    tools,
    users,
)
from mirix.observability import MetricsMiddleware
from mirix.observability.tracing import setup_tracing
from mirix.server.server import AsyncServer
from mirix.settings import Settings

# A request is matched against the routes in this order, so the busiest come first. Among the
# /memory routers the order matters: memory's /memory/{type}/{id} would also match
# /memory/raw/{id} and /memory/jobs/{id}.
ROUTERS = (
    health,
    raw_memory,
    memory_write,
    memory,
    metrics,
    organizations,
    clients,
    users,
    blocks,
    tools,
    agents,
    agent_messages,
    config,
    admin,
)


#: Net allocations of container objects between two collections of the youngest generation.
#: Python's default, 700, meant one every few requests here, and each found almost nothing (0.4
#: objects per collection in a search benchmark): what requests allocate is freed by reference
#: counting. Fewer young collections also mean fewer full ones (from 12 to 1 in that run).
GEN0_THRESHOLD = 10_000


def _tune_garbage_collector() -> tuple[int, int, int]:
    """Exempt what is alive once the server is up from the cyclic garbage collector, and collect
    the young generation less often; returns the thresholds to restore.

    The exempted objects are some 200k modules, mappers and models that live as long as the
    process. A full collection walks every tracked object: with these it took ~100 ms, during
    which no request moves, every few hundred searches."""
    gc.collect()
    gc.freeze()
    previous = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, *previous[1:])
    return previous


def create_app(
    settings: Settings | None = None,
    *,
    server: AsyncServer | None = None,
    on_started: Callable[[AsyncServer], None] | None = None,
) -> FastAPI:
    """Build the app.

    The lifespan starts the server and stops it after the last request, unless a started server
    is handed in (tests), which its owner stops. ``on_started`` runs once the server is up.
    """
    settings = settings or (server.settings if server else Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = server is None
        if server is None:
            started = await AsyncServer.start(settings)
            await started.warm_up()
            app.state.server = started
        else:
            app.state.server = server
        thresholds = None
        if owned:
            await app.state.server.start_workers()
            thresholds = _tune_garbage_collector()
        if on_started is not None:
            on_started(app.state.server)
        try:
            yield
        finally:
            if thresholds is not None:
                gc.unfreeze()
                gc.set_threshold(*thresholds)
            if owned:
                await app.state.server.close()

    app = FastAPI(
        title="MIRIX API",
        version=__version__,
        summary="Async multi-agent memory server, wire-compatible with the MIRIX REST API.",
        lifespan=lifespan,
    )
    if server is not None:
        app.state.server = server
    install_error_handlers(app)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(RequestIdMiddleware)
    for module in ROUTERS:
        app.include_router(module.router)
    setup_tracing(app, settings)  # a no-op unless MIRIX_OTEL_ENABLED
    return app
