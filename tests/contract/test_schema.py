"""Migrations produce exactly the schema of the table definitions, on every backend."""

from __future__ import annotations

from pathlib import Path

import pytest
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


def test_every_revision_id_is_its_files_number_and_the_newest_is_head():
    """`migrate` recognises an up-to-date database by the newest file's number, without Alembic."""
    from alembic.script import ScriptDirectory

    from omnirelay.store.migrate import alembic_config, head_revision

    scripts = ScriptDirectory.from_config(alembic_config())
    for revision in scripts.walk_revisions():
        assert revision.path is not None
        assert Path(revision.path).name[:4] == revision.revision, revision.path
    assert scripts.get_heads() == [head_revision()]


async def test_a_database_behind_head_is_migrated(engine: AsyncEngine):
    """A database whose recorded revision is not head is handed to Alembic (here an unknown one,
    which Alembic refuses); one at head is left alone."""
    from sqlalchemy import text

    from omnirelay.store.migrate import head_revision

    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = 'none'"))
    with pytest.raises(Exception, match="none"):  # Alembic ran, and cannot find that revision
        await migrate(engine)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head_revision()})
    await migrate(engine)
