"""One place that turns errors into HTTP responses. Every body is ``{"detail": ...}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from mirix.embeddings.base import EmbeddingError
from mirix.errors import AuthenticationError, MirixError, RateLimitError
from mirix.llm.errors import LLMError
from mirix.logs import request_id_var

log = logging.getLogger(__name__)


async def _mirix_error(_request: Request, exc: MirixError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthenticationError) else None
    if isinstance(exc, RateLimitError):
        headers = {"Retry-After": str(exc.retry_after)}
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


async def _integrity_error(_request: Request, exc: IntegrityError) -> JSONResponse:
    log.info("integrity error: %s", exc.orig)
    return JSONResponse({"detail": "The request conflicts with existing data"}, status_code=409)


async def _embedding_error(_request: Request, exc: EmbeddingError) -> JSONResponse:
    log.warning("embedding provider failed: %s", exc)
    return JSONResponse({"detail": f"Embedding provider unavailable: {exc}"}, status_code=503)


async def _llm_error(_request: Request, exc: LLMError) -> JSONResponse:
    log.warning("LLM provider failed: %s", exc)
    status = 503 if exc.transient else 502
    return JSONResponse({"detail": f"LLM provider error: {exc}"}, status_code=status)


async def _pool_exhausted(request: Request, exc: PoolTimeoutError) -> JSONResponse:
    # Every database connection is busy: the server is overloaded, not broken; the client may retry.
    log.warning("database connection pool exhausted: %s", exc)
    return JSONResponse({"detail": "The server is busy; retry shortly"}, status_code=503, headers={"Retry-After": "1"})


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # This handler runs outside the request-id middleware, so the id comes from the request state.
    request_id = getattr(request.state, "request_id", None) or request_id_var.get()
    log.exception("unhandled error (request %s)", request_id, exc_info=exc)
    return JSONResponse(
        {"detail": "Internal server error", "request_id": request_id},
        status_code=500,
        headers={"X-Request-ID": request_id},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(MirixError, _mirix_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(EmbeddingError, _embedding_error)
    app.add_exception_handler(LLMError, _llm_error)
    app.add_exception_handler(PoolTimeoutError, _pool_exhausted)
    app.add_exception_handler(Exception, _unexpected)
