"""``GET /metrics``: the Prometheus text exposition of this process's registry."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from mirix.api.deps import Server

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="Prometheus metrics of this process (no authentication: keep it off the public network)",
    response_class=Response,
    include_in_schema=False,  # Prometheus text, not part of the JSON API
)
async def metrics(server: Server) -> Response:
    return Response(server.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
