"""Domain errors raised by services and mapped to HTTP status codes in one place (``mirix.api.errors``)."""

from __future__ import annotations


class MirixError(Exception):
    status_code = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequestError(MirixError):
    status_code = 400


class AuthenticationError(MirixError):
    status_code = 401


class PermissionDeniedError(MirixError):
    status_code = 403


class NotFoundError(MirixError):
    """Unknown id, or an id that belongs to someone the caller may not see: the two look the same."""

    status_code = 404


class ConflictError(MirixError):
    status_code = 409


class UnprocessableError(MirixError):
    status_code = 422


class RateLimitError(MirixError):
    """Too many requests: the response carries ``Retry-After`` (whole seconds)."""

    status_code = 429

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class ServiceUnavailableError(MirixError):
    """A service the request needs (the job queue's broker, ...) cannot be reached; try again later."""

    status_code = 503
