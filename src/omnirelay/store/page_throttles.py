"""Meta's throttling of a Page, shared by the nodes (docs/architecture.md#cluster-wide-budgets),
in the database's time."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import BigInteger, case, delete, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from omnirelay.store.claims import db_now_ms
from omnirelay.store.engine import conflict_insert, reading
from omnirelay.store.tables import page_throttles
from omnirelay.store.writer import Writer

_T = page_throttles.c
_KEEP_ENDED_MS = 60_000  # ended throttles are deleted a minute after they end


class SqlPageThrottles:
    def __init__(self, engine: AsyncEngine, writer: Writer) -> None:
        self._engine = engine
        self._writer = writer
        self._pg = engine.dialect.name == "postgresql"

    async def publish(self, waits: Mapping[str, float]) -> None:
        """Page -> seconds Meta asked to wait, from now: kept as until when, the later one winning."""
        now = db_now_ms(pg=self._pg)
        rows = [{"page_id": p, "until": now + literal(int(s * 1000), BigInteger)} for p, s in waits.items()]
        stmt = conflict_insert(page_throttles, pg=self._pg).values(rows)
        stmt = stmt.on_conflict_do_update(
            index_elements=[_T.page_id],
            set_={"until": case((stmt.excluded.until > _T.until, stmt.excluded.until), else_=_T.until)},
        )
        tidy = delete(page_throttles).where(_T.until < now - _KEEP_ENDED_MS)

        async def unit(conn: AsyncConnection) -> None:
            await conn.execute(stmt)
            await conn.execute(tidy)

        await self._writer.run(unit)

    async def current(self) -> dict[str, float]:
        """Page -> seconds still to wait, for the throttles not ended yet."""
        now = db_now_ms(pg=self._pg)
        async with reading(self._engine) as conn:
            rows = (
                await conn.execute(select(_T.page_id, (_T.until - now).label("left")).where(_T.until > now))
            ).all()
        return {r.page_id: r.left / 1000 for r in rows}
