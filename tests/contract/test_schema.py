"""Migrations produce exactly the schema of the table definitions, on every backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

from omnirelay.store.migrate import migrate
from omnirelay.store.tables import metadata


async def test_migrations_match_table_definitions(engine: AsyncEngine):
    def diff(sync_conn):  # type: ignore[no-untyped-def]
        ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        return compare_metadata(ctx, metadata)

    async with engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == []


async def test_migrating_twice_is_harmless(engine: AsyncEngine):
    await migrate(engine)
    await migrate(engine)
