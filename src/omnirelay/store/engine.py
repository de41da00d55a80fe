"""Engine construction: SQLite (WAL, synchronous=FULL) or PostgreSQL (asyncpg)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from omnirelay.domain.errors import StorageUnavailable


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str) -> AsyncEngine:
    if is_sqlite(url):
        engine = create_async_engine(url, pool_size=8, max_overflow=8, hide_parameters=True)

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
