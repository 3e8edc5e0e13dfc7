"""Async engine and session factory for SQLite (aiosqlite) or PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import URL, event, make_url
from sqlalchemy.dialects import registry
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from mirix.settings import Settings


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run while a writer commits; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _ensure_sqlite_dir(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _one_trip_driver(url: str) -> URL:
    """The same database through ``mirix.db.sqlite_driver`` (one driver-thread trip per statement)."""
    from mirix.db import sqlite_driver

    registry.register(f"sqlite.{sqlite_driver.DRIVER}", "mirix.db.sqlite_driver", "SQLiteDialect")
    return make_url(url).set(drivername=f"sqlite+{sqlite_driver.DRIVER}")


def create_engine(settings: Settings, *, url: str | None = None) -> AsyncEngine:
    url = url or settings.async_database_url
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        engine = create_async_engine(
            _one_trip_driver(url),
            echo=settings.db_echo,
            connect_args={"timeout": 30},
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            # Sessions and connections already roll back when they close; the pool's own rollback
            # on check-in was a second round trip to the driver thread for every session.
            pool_reset_on_return=None,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        echo=settings.db_echo,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def create_migration_engine(url: str) -> AsyncEngine:
    """A single-use engine for schema changes, never pooled."""
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
    engine = create_async_engine(url, poolclass=NullPool)
    if url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


_holds_write_lock: contextvars.ContextVar[bool] = contextvars.ContextVar("holds_write_lock", default=False)


class Sessions:
    """The session factory: ``sessions()`` for reads, ``sessions.begin()`` for a write transaction,
    ``sessions.connect()`` for a Core statement on a hot path that needs no ORM objects.

    SQLite has one writer at a time; concurrent writers otherwise wait in SQLite's busy handler,
    which sleeps up to 100 ms between tries — under load a job's few short writes then take
    seconds. On SQLite, write transactions of this process therefore queue on an asyncio lock
    instead (re-entrant per task, so nested use cannot deadlock); other processes still meet
    the busy timeout. PostgreSQL needs none of this.
    """

    def __init__(self, engine: AsyncEngine, maker: async_sessionmaker[AsyncSession], *, serialize_writes: bool) -> None:
        self._engine = engine
        self._maker = maker
        self._lock = asyncio.Lock() if serialize_writes else None

    def __call__(self) -> AsyncSession:
        return self._maker()

    def connect(self) -> AsyncConnection:
        """A pooled connection without a session: for reads of plain rows, where the session's
        unit of work (identity map, transaction bookkeeping) would be pure overhead. Read-only:
        writes go through ``begin()``, which also serialises them on SQLite."""
        return self._engine.connect()

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncSession]:
        if self._lock is None or _holds_write_lock.get():
            async with self._maker.begin() as session:
                yield session
            return
        async with self._lock:
            token = _holds_write_lock.set(True)
            try:
                async with self._maker.begin() as session:
                    yield session
            finally:
                _holds_write_lock.reset(token)


def create_session_factory(engine: AsyncEngine) -> Sessions:
    maker = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    return Sessions(engine, maker, serialize_writes=engine.dialect.name == "sqlite")
