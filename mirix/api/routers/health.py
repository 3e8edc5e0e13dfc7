from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from mirix.api.deps import Server

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness, database and cache reachability (no authentication)")
async def health(server: Server) -> JSONResponse:
    database_ok = await server.check_database()
    cache_ok = await server.check_cache()
    # Without the cache (Redis) the API still answers from the database: degraded, not down.
    status = "unhealthy" if not database_ok else "healthy" if cache_ok else "degraded"
    body = {
        "status": status,
        "service": "mirix-api",
        "database": "ok" if database_ok else "down",
        "cache": "ok" if cache_ok else "down",
    }
    return JSONResponse(body, status_code=200 if database_ok else 503)
