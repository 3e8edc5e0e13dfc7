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


def _freeze_startup_objects() -> None:
    """Exempt what is alive once the server is up from the cyclic garbage collector.

    That is some 200k objects (modules, the app, ORM mappers, pydantic models) that live as long
    as the process. A full collection walks every tracked object: with these it took ~100 ms,
    during which no request moves, every few hundred searches."""
    gc.collect()
    gc.freeze()


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
        if owned:
            await app.state.server.start_workers()
            _freeze_startup_objects()
        if on_started is not None:
            on_started(app.state.server)
        try:
            yield
        finally:
            if owned:
                gc.unfreeze()
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
