"""`SqlForwardStore`: the outbox of inbound messages to forward to applications' `webhookUrl`.

A claim leases due rows (store.claims: a fencing token, the lease's expiry in database time), so a
loop that dies while posting leaves them due again later (at-least-once forwarding), and a
settlement from a claim taken over since is not written.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from omnirelay.domain.times import from_ms, to_ms
from omnirelay.ports import ForwardRecord
from omnirelay.store import claims
from omnirelay.store.engine import reading
from omnirelay.store.tables import forwards
from omnirelay.store.writer import Writer

_FORWARDS = claims.Outbox(
    forwards,
    forwards.c.id,
    forwards.c.next_try_at,
    forwards.c.lease_token,
    forwards.c.lease_until,
    (forwards.c.next_try_at.is_not(None),),
)


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
        stmt = claims.claim(
            _FORWARDS, now_ms=to_ms(now), lease_s=lease_s, limit=limit, pg=self._pg
        ).returning(
            forwards.c.id,
            forwards.c.application_key,
            forwards.c.url,
            forwards.c.body,
            forwards.c.created_at,
            forwards.c.tries,
            forwards.c.lease_token,
        )

        async def unit(conn: AsyncConnection) -> list[ForwardRecord]:
            rows = (await conn.execute(stmt)).all()
            return [
                ForwardRecord(
                    r.id,
                    r.application_key,
                    r.url,
                    r.body.encode(),
                    from_ms(r.created_at),
                    r.tries,
                    r.lease_token,
                )
                for r in sorted(rows, key=lambda r: r.id)
            ]

        return await self._writer.run(unit)

    async def settle_forward(self, forward: ForwardRecord, tries: int, next_try_at: datetime | None) -> bool:
        stmt = (
            update(forwards)
            .where(forwards.c.id == forward.id, forwards.c.lease_token == forward.token)
            .values(
                tries=tries,
                next_try_at=to_ms(next_try_at) if next_try_at is not None else None,
                lease_until=None,
            )
        )

        async def unit(conn: AsyncConnection) -> bool:
            return (await conn.execute(stmt)).rowcount == 1

        return await self._writer.run(unit)
