"""What every manager shares: the session factory and keyset pagination."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select

from mirix.db.engine import Sessions

T = TypeVar("T", bound=tuple[Any, ...])

MAX_PAGE = 1000


class Manager:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions


def page(query: Select[T], id_column: Any, cursor: str | None, limit: int) -> Select[T]:
    """Order by id and continue after ``cursor`` (the last id of the previous page)."""
    if cursor:
        query = query.where(id_column > cursor)
    return query.order_by(id_column).limit(max(1, min(limit, MAX_PAGE)))
