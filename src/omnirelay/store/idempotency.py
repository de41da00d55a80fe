"""Idempotency keys (docs/api.md#idempotency): the first answer to a key is kept for 24 h and replayed.

A key and its answer are kept in the transaction that commits the request's messages (`keep`,
called by the message store), not in transactions of their own around it. The key used to be
reserved first and the answer stored after the messages: a crash before the messages left the key
"in progress" for 24 h with nothing sent, and a crash after them left it without an answer; every
retry got a 409. Now the messages, the key and the answer are committed together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from omnirelay.domain.times import to_ms
from omnirelay.ports import IdempotencyClaim, IdempotentAnswer
from omnirelay.store.engine import reading
from omnirelay.store.tables import idempotency_keys

_K = idempotency_keys.c
TTL = timedelta(hours=24)


async def free(conn: AsyncConnection, claims: Sequence[IdempotencyClaim | None]) -> list[bool]:
    """Whether each claim's key is free, in order, in `conn`'s transaction: False for a key kept
    within the TTL or claimed by an earlier claim of the list (None claims are True). A key kept
    longer ago is deleted, for `keep` to write again."""
    wanted = {(c.request.account_id, c.request.key) for c in claims if c is not None}
    if not wanted:
        return [True] * len(claims)
    rows = await conn.execute(
        select(_K.account_id, _K.key, _K.created_at).where(tuple_(_K.account_id, _K.key).in_(sorted(wanted)))
    )
    held = {(r.account_id, r.key): r.created_at for r in rows}
    taken: set[tuple[int, str]] = set()
    out: list[bool] = []
    for claim in claims:
        if claim is None:
            out.append(True)
            continue
        r = claim.request
        pk = (r.account_id, r.key)
        created = held.get(pk)
        if pk in taken or (created is not None and created >= to_ms(r.now - TTL)):
            out.append(False)
            continue
        if created is not None:  # kept longer ago than the TTL: the key is free again
            await conn.execute(delete(idempotency_keys).where(_K.account_id == pk[0], _K.key == pk[1]))
        taken.add(pk)
        out.append(True)
    return out


async def keep(conn: AsyncConnection, claim: IdempotencyClaim, inserted: list[bool]) -> None:
    """Keep a free claim's key with its 200 answer for these insert results."""
    r = claim.request
    await conn.execute(
        insert(idempotency_keys).values(
            account_id=r.account_id,
            key=r.key,
            body_digest=r.body_digest,
            status_code=200,
            response=claim.answer(inserted).decode(),
            created_at=to_ms(r.now),
        )
    )


class SqlIdempotencyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def lookup(self, account_id: int, key: str, now: datetime) -> IdempotentAnswer | None:
        async with reading(self._engine) as conn:
            row = (
                await conn.execute(
                    select(idempotency_keys).where(
                        _K.account_id == account_id,
                        _K.key == key,
                        _K.created_at >= to_ms(now - TTL),
                    )
                )
            ).first()
        if row is None:
            return None
        return IdempotentAnswer(row.body_digest, row.status_code, row.response.encode())
