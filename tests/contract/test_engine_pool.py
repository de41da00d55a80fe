"""The SQLite engine keeps its reader connections: a second burst of reads opens none."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

from omnirelay.store.engine import make_engine, reading


async def test_a_second_burst_of_reads_reuses_the_first_bursts_connections(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'pool.sqlite3'}")
    opened = 0

    @event.listens_for(engine.sync_engine, "connect")
    def _count(_dbapi_conn: Any, _record: Any) -> None:
        nonlocal opened
        opened += 1

    async def read() -> None:
        async with reading(engine) as conn:
            await conn.execute(text("SELECT 1"))
            await asyncio.sleep(0.05)  # held, so that the burst needs many connections at once

    try:
        await asyncio.gather(*(read() for _ in range(32)))
        first = opened
        assert first > 1
        await asyncio.gather(*(read() for _ in range(32)))
        assert opened == first  # each new connection is a thread, pragmas and a schema parse
    finally:
        await engine.dispose()
