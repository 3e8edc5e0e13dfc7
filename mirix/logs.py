"""Logging set-up: every record carries the id of the request (or job) it belongs to.

In a job, ``job_id`` is the job and ``request_id`` the request that queued it (when known), so one
search finds the request and everything its job did, on whichever replica ran it.
"""

from __future__ import annotations

import contextvars
import json
import logging
from typing import TextIO

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
job_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("job_id", default=None)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.job_id = job_id_var.get()
        record.context = record.request_id if record.job_id is None else f"{record.request_id} job={record.job_id}"
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        job_id = getattr(record, "job_id", None)
        if job_id is not None:
            entry["job_id"] = job_id
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def make_handler(as_json: bool = False, stream: TextIO | None = None) -> logging.Handler:
    """A stream handler (stderr by default) whose records carry the request and job ids."""
    handler = logging.StreamHandler(stream)
    handler.addFilter(_ContextFilter())
    handler.setFormatter(
        _JsonFormatter()
        if as_json
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(context)s] %(message)s")
    )
    return handler


def configure_logging(level: str = "INFO", as_json: bool = False) -> None:
    """One handler for our loggers, uvicorn's (start-up, errors) and warnings of any library."""
    handler = make_handler(as_json)
    for name in ("mirix", "uvicorn"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
