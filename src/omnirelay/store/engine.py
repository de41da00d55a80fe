"""Engine construction: SQLite (WAL, synchronous=FULL) or PostgreSQL (asyncpg)."""

from __future__ import annotations

import contextlib
import operator
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, any_, bindparam, event, insert, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.dml import UpdateBase

from omnirelay.domain.errors import StorageUnavailable


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


STATEMENT_TIMEOUT_MS = 30_000  # PostgreSQL's statement_timeout for every connection


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
    # Bounded waits: a statement running past 30 s is cancelled by the server, a connection attempt
    # gives up after 10 s, a pool checkout after 10 s (the writer also bounds its transactions).
    return create_async_engine(
        url,
        pool_size=10,
        max_overflow=10,
        pool_pre_ping=True,
        pool_timeout=10,
        hide_parameters=True,
        connect_args={"timeout": 10, "server_settings": {"statement_timeout": str(STATEMENT_TIMEOUT_MS)}},
    )


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


def conflict_insert(table: Table, *, pg: bool) -> postgresql.Insert | sqlite.Insert:
    """An INSERT of the backend's own dialect, for its `ON CONFLICT` clause (statements run through
    SQLAlchemy; a `RowStatement`'s text is the same on both and needs none)."""
    return postgresql.insert(table) if pg else sqlite.insert(table)


def one_of(column: ColumnElement[Any], values: Sequence[Any], *, pg: bool) -> ColumnElement[bool]:
    """`column IN (values)`; on PostgreSQL `column = ANY($1)`, one array parameter. An `IN` list is a
    new statement text for every count of values: asyncpg prepared each one again (a round trip,
    and planning with hundreds of parameters), since a batch's count rarely repeats."""
    if pg:
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)


async def reachable(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (DBAPIError, OSError):
        return False
    return True


class RowStatement:
    """A DML statement with bound parameters, compiled once and run for many rows as one
    executemany at the driver, each row a mapping of its parameters' names.

    The hot writes skip SQLAlchemy's per-row parameter processing (end to end, constructing the
    parameters of the group commit's executemanys was ~10 % of the gateway's CPU). On SQLite the
    statement goes to aiosqlite's connection directly: one hand-off to its thread instead of three
    (cursor, execute, close); it runs in the transaction SQLAlchemy opened, since it is the same
    sqlite3 connection. On PostgreSQL it goes through `exec_driver_sql`, so the adapter's transaction
    is begun first. The text is SQLite's with `?` or `$n` placeholders: only statements that read
    the same on both (plain INSERT, UPDATE … WHERE, INSERT … ON CONFLICT … DO UPDATE). Values must
    be what the driver takes as is (ints, strings, None, bools): no type processing happens.
    """

    def __init__(self, stmt: UpdateBase) -> None:
        self._sqlite, names = self._positional(stmt, "qmark")
        # the same text with $n: PostgreSQL's dialects would add casts and RETURNING for asyncpg
        self._pg, pg_names = self._positional(stmt, "numeric_dollar")
        if pg_names != names:
            raise ValueError("parameters in another order with $n placeholders")
        self.names = names
        self._row = operator.itemgetter(*names) if len(names) > 1 else lambda m: (m[names[0]],)

    @staticmethod
    def _positional(stmt: UpdateBase, paramstyle: str) -> tuple[str, tuple[str, ...]]:
        compiled = stmt.compile(dialect=sqlite.dialect(paramstyle=paramstyle))
        names = tuple(compiled.positiontup or ())
        fixed = [name for name in names if not compiled.binds[name].required]
        if fixed or not names:
            # a value written into the statement (`.values(x=True)`) would not come from the rows
            raise ValueError(f"every parameter must be a bindparam without a value: {fixed or 'none'}")
        return compiled.string, names

    @classmethod
    def inserting(cls, table: Table, columns: tuple[str, ...]) -> RowStatement:
        """An INSERT of these columns; `run_tuples` takes rows in `columns` order."""
        stmt = cls(insert(table).values({c: bindparam(c) for c in columns}))
        if stmt.names != columns:
            raise ValueError("parameters in another order than the columns")
        return stmt

    async def run(self, conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> int | None:
        """Run for every row; the rows changed, where the driver tells (SQLite), else None."""
        return await self.run_tuples(conn, [self._row(row) for row in rows])

    async def run_tuples(self, conn: AsyncConnection, rows: list[tuple[Any, ...]]) -> int | None:
        """Rows already as tuples, in `names` order."""
        if not rows:
            return 0
        if conn.dialect.name == "sqlite":
            raw = await conn.get_raw_connection()
            try:
                cursor = await raw.driver_connection.executemany(self._sqlite, rows)  # type: ignore[union-attr]
            except sqlite3.Error as exc:  # as SQLAlchemy would raise it: the writer tells "unavailable" by it
                raise DBAPIError.instance(
                    self._sqlite, None, exc, sqlite3.Error, hide_parameters=True, ismulti=True
                ) from exc
            return int(cursor.rowcount)
        await conn.exec_driver_sql(self._pg, rows)
        return None
