"""Idempotency keys (SPEC D4): the first response to a key is kept for 24 h and replayed."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from omnirelay.domain.times import to_ms
from omnirelay.ports import IdempotentAnswer
from omnirelay.store.tables import idempotency_keys
from omnirelay.store.writer import Writer

_K = idempotency_keys.c


class SqlIdempotencyStore:
    def __init__(self, writer: Writer, *, ttl_s: float = 24 * 3600) -> None:
        self._writer = writer
        self._ttl = timedelta(seconds=ttl_s)

    async def claim(
        self, account_id: int, key: str, body_digest: str, now: datetime
    ) -> IdempotentAnswer | None:
        """Reserve the key; or the answer already kept for it (status 0: still in progress)."""

        async def unit(conn: AsyncConnection) -> IdempotentAnswer | None:
            where = (_K.account_id == account_id, _K.key == key)
            row = (await conn.execute(select(idempotency_keys).where(*where))).first()
            if row is not None and row.created_at >= to_ms(now - self._ttl):
                return IdempotentAnswer(row.body_digest, row.status_code, row.response.encode())
            if row is not None:
                await conn.execute(delete(idempotency_keys).where(*where))
            await conn.execute(
                insert(idempotency_keys).values(
                    account_id=account_id,
                    key=key,
                    body_digest=body_digest,
                    status_code=0,
                    response="",
                    created_at=to_ms(now),
                )
            )
            return None

        return await self._writer.run(unit)

    async def complete(self, account_id: int, key: str, status_code: int, response: bytes) -> None:
        async def unit(conn: AsyncConnection) -> None:
            await conn.execute(
                update(idempotency_keys)
                .where(_K.account_id == account_id, _K.key == key)
                .values(status_code=status_code, response=response.decode())
            )

        await self._writer.run(unit)

    async def release(self, account_id: int, key: str) -> None:
        async def unit(conn: AsyncConnection) -> None:
            await conn.execute(delete(idempotency_keys).where(_K.account_id == account_id, _K.key == key))

        await self._writer.run(unit)
