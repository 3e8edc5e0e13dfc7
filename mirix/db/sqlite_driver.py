"""SQLAlchemy's aiosqlite dialect with one trip to the driver thread per statement.

aiosqlite runs sqlite3 on a thread of its own; every call crosses to it and back (a queue put, a
thread wake-up, a callback scheduled onto the event loop). SQLAlchemy's adapter makes four such
trips per statement: open a cursor, execute, fetch the rows, close the cursor. Here one function
does all four on the driver thread, so a search's three statements cost three trips instead of
twelve, and concurrent requests contend less for the GIL. Everything else — transactions,
isolation levels, server-side cursors for streaming — is the stock dialect's, except that ending
a transaction that was never begun (a session that only read) costs no trip.

Used by ``mirix.db.engine`` for every ``sqlite`` URL (registered as ``sqlite+mirix_aiosqlite``).
"""

from __future__ import annotations

import collections
from typing import Any

from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
    SQLiteDialect_aiosqlite,
)
from sqlalchemy.util.concurrency import await_

DRIVER = "mirix_aiosqlite"

_Outcome = tuple[Any, list[Any] | None, int, int | None]


def _run(connection: Any, operation: str, parameters: Any, many: bool) -> _Outcome:
    """On the driver thread, with its ``sqlite3.Connection``: execute, fetch everything, close the cursor."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        else:
            cursor.execute(operation, parameters if parameters is not None else ())
        rows = cursor.fetchall() if cursor.description else None
        return cursor.description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A client-side cursor whose rows arrive with the statement's outcome."""

    __slots__ = ("_outcome",)
    _awaitable_cursor_close = False

    def __init__(self, adapt_connection: Any) -> None:  # no driver cursor to open up front
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = {}  # type: ignore[assignment]
        self._rows = collections.deque()
        self._outcome: _Outcome = (None, None, -1, None)

    @property
    def description(self) -> Any:
        return self._outcome[0]

    @property
    def rowcount(self) -> int:
        return self._outcome[2]

    @property
    def lastrowid(self) -> Any:
        return self._outcome[3]

    async def _trip(self, operation: Any, parameters: Any, many: bool) -> None:
        connection = self._connection
        async with self._adapt_connection._execute_mutex:
            self._outcome = await connection._execute(_run, connection._conn, operation, parameters, many)
        rows = self._outcome[1]
        self._rows = collections.deque(rows) if rows is not None else collections.deque()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            await_(self._trip(operation, parameters, False))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        try:
            await_(self._trip(operation, seq_of_parameters, True))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def close(self) -> None:
        self._rows.clear()


class _Connection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor

    def rollback(self) -> None:
        # Every session rolls back when it closes, but one that only read has no transaction to
        # end (sqlite3 opens one before the first write), and the trip would be for nothing.
        if self._in_transaction():
            super().rollback()

    def commit(self) -> None:
        if self._in_transaction():
            super().commit()

    def _in_transaction(self) -> bool:
        # Read from the event loop's thread: sqlite3 answers this one from the connection's
        # state without the thread check, and no statement runs on it during a commit or rollback.
        driver = self._connection._connection
        return driver is not None and driver.in_transaction


class _DBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> _Connection:
        # The stock connect opens the aiosqlite connection (thread, options); only its adapter is swapped.
        stock = super().connect(*arg, **kw)
        return _Connection(self, stock._connection)


class SQLiteDialect(SQLiteDialect_aiosqlite):
    driver = DRIVER
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> _DBAPI:
        return _DBAPI(__import__("aiosqlite"), __import__("sqlite3"))
