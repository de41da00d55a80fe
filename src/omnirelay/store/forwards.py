"""`SqlForwardStore`: the outbox of inbound messages to forward to applications' `webhookUrl`.

A claim leases due rows by moving `next_try_at` to the lease's end, so a loop that dies while
posting leaves them due again later (at-least-once forwarding); `FOR UPDATE SKIP LOCKED` keeps
two PostgreSQL nodes from claiming the same rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from omnirelay.domain.times import from_ms, to_ms
from omnirelay.ports import ForwardRecord
from omnirelay.store.engine import reading
from omnirelay.store.tables import forwards
from omnirelay.store.writer import Writer


class SqlForwardStore:
    def __init__(self, engine: AsyncEngine, writer: Writer) -> None:
        self._engine = engine
        self._writer = writer
        self._pg = engine.dialect.name == "postgresql"

    async def claim_forwards(self, now: datetime, lease_s: float, limit: int) -> list[ForwardRecord]:
        # The loop polls often and the outbox is usually empty: look before taking the writer.
        async with reading(self._engine) as conn:
            any_due = (
                await conn.execute(select(forwards.c.id).where(forwards.c.next_try_at <= to_ms(now)).limit(1))
            ).first()
        if any_due is None:
            return []
        due = (
            select(forwards.c.id)
            .where(forwards.c.next_try_at <= to_ms(now))
            .order_by(forwards.c.next_try_at, forwards.c.id)
            .limit(limit)
        )
        if self._pg:
            due = due.with_for_update(skip_locked=True)
        stmt = (
            update(forwards)
            .where(forwards.c.id.in_(due.scalar_subquery()))
            .values(next_try_at=to_ms(now + timedelta(seconds=lease_s)))
            .returning(
                forwards.c.id,
                forwards.c.application_key,
                forwards.c.url,
                forwards.c.body,
                forwards.c.created_at,
                forwards.c.tries,
            )
        )

        async def unit(conn: AsyncConnection) -> list[ForwardRecord]:
            rows = (await conn.execute(stmt)).all()
            return [
                ForwardRecord(r.id, r.application_key, r.url, r.body.encode(), from_ms(r.created_at), r.tries)
                for r in sorted(rows, key=lambda r: r.id)
            ]

        return await self._writer.run(unit)

    async def settle_forward(self, forward_id: int, tries: int, next_try_at: datetime | None) -> None:
        async def unit(conn: AsyncConnection) -> None:
            await conn.execute(
                update(forwards)
                .where(forwards.c.id == forward_id)
                .values(tries=tries, next_try_at=to_ms(next_try_at) if next_try_at is not None else None)
            )

        await self._writer.run(unit)
