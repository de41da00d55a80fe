"""Apply the versioned schema migrations (Alembic) at start; safe with several nodes on PostgreSQL.

A database already at the newest revision is recognised with one query, without loading Alembic
(about a third of a data command's start-up). The newest revision is the highest-numbered file in
`migrations/versions/`: every revision id is its file's four-digit prefix (tests/contract/test_schema.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

_SCRIPTS = Path(__file__).parent / "migrations"
_LOCK_ID = 0x6F6D6E69  # "omni": one advisory lock for schema changes


def head_revision() -> str:
    """The newest revision id, from the migration files' names."""
    return max(p.name[:4] for p in (_SCRIPTS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    from alembic import command

    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
    command.upgrade(alembic_config(connection), "head")


async def _at_head(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as conn:
            found = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
    except DBAPIError:  # no schema yet
        return False
    return found == [head_revision()]


async def migrate(engine: AsyncEngine) -> None:
    if await _at_head(engine):
        return
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)
