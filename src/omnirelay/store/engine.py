"""Engine construction: SQLite (WAL, synchronous=FULL) or PostgreSQL (asyncpg)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import Dialect, Insert, Table, bindparam, event, insert, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from omnirelay.domain.errors import StorageUnavailable


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str) -> AsyncEngine:
    if is_sqlite(url):
        # Readers keep their connections: an overflow connection was opened and closed per burst of
        # reads (a thread, the pragmas, the schema parsed again), dozens a second under load.
        engine = create_async_engine(url, pool_size=16, max_overflow=0, hide_parameters=True)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()

        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True, hide_parameters=True)


@contextlib.asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A read connection; failing to reach the database becomes `StorageUnavailable`."""
    try:
        conn_cm = engine.connect()
        conn = await conn_cm.__aenter__()
    except (DBAPIError, OSError) as exc:
        raise StorageUnavailable() from exc
    try:
        yield conn
    except (OperationalError, InterfaceError, OSError) as exc:
        await conn_cm.__aexit__(type(exc), exc, exc.__traceback__)
        raise StorageUnavailable() from exc
    except BaseException as exc:
        await conn_cm.__aexit__(type(exc), exc, exc.__traceback__)
        raise
    else:
        await conn_cm.__aexit__(None, None, None)


async def reachable(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (DBAPIError, OSError):
        return False
    return True


class RowInsert:
    """An INSERT of fixed columns from tuples, as one executemany at the driver.

    The hot inserts skip SQLAlchemy's per-row parameter processing. On SQLite the statement goes to
    aiosqlite's connection directly: one hand-off to its thread instead of three (cursor, execute,
    close); it runs in the transaction SQLAlchemy opened, since it is the same sqlite3 connection.
    On PostgreSQL it goes through `exec_driver_sql`, so the adapter's transaction is begun first.
    Values must be what the driver takes as is (ints, strings, None, bools).
    """

    def __init__(self, table: Table, columns: tuple[str, ...]) -> None:
        self.columns = columns
        stmt = insert(table).values({c: bindparam(c) for c in columns})
        self._sqlite = self._positional(stmt, sqlite.dialect(paramstyle="qmark"))
        # the same text with $n: PostgreSQL's dialects would add casts and RETURNING for asyncpg
        self._pg = self._positional(stmt, sqlite.dialect(paramstyle="numeric_dollar"))

    def _positional(self, stmt: Insert, dialect: Dialect) -> str:
        compiled = stmt.compile(dialect=dialect)
        if tuple(compiled.positiontup or ()) != self.columns:
            raise ValueError(f"{dialect.paramstyle}: parameters in another order than the columns")
        return compiled.string

    async def run(self, conn: AsyncConnection, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if conn.dialect.name == "sqlite":
            raw = await conn.get_raw_connection()
            try:
                await raw.driver_connection.executemany(self._sqlite, rows)  # type: ignore[union-attr]
            except sqlite3.Error as exc:  # as SQLAlchemy would raise it: the writer tells "unavailable" by it
                raise DBAPIError.instance(
                    self._sqlite, None, exc, sqlite3.Error, hide_parameters=True, ismulti=True
                ) from exc
        else:
            await conn.exec_driver_sql(self._pg, rows)
