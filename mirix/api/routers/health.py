from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from mirix.api.deps import Server

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness and database reachability (no authentication)")
async def health(server: Server) -> JSONResponse:
    database_ok = await server.check_database()
    body = {
        "status": "healthy" if database_ok else "unhealthy",
        "service": "mirix-api",
        "database": "ok" if database_ok else "down",
    }
    return JSONResponse(body, status_code=200 if database_ok else 503)
