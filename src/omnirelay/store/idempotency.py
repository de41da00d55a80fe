"""Idempotency keys (docs/api.md#idempotency): the first answer to a key is kept for 24 h and replayed.

A key and its answer are kept in the transaction that commits the request's messages (`free` takes
the key, `keep` writes the answer, both called by the message store), not in transactions of their
own around it. The key used to be reserved in a transaction of its own and the answer stored after
the messages: a crash before the messages left the key "in progress" for 24 h with nothing sent,
and a crash after them left it without an answer; every retry got a 409. Now the messages, the key
and the answer are committed together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from omnirelay.domain.times import to_ms
from omnirelay.ports import IdempotencyClaim, IdempotentAnswer
from omnirelay.store.engine import conflict_insert, reading
from omnirelay.store.tables import idempotency_keys

_K = idempotency_keys.c
TTL = timedelta(hours=24)


async def free(conn: AsyncConnection, claims: Sequence[IdempotencyClaim | None]) -> list[bool]:
    """Whether each claim's key is free, in order, in `conn`'s transaction: False for a key kept
    within the TTL, claimed by an earlier claim of the list, or by a transaction of another node
    (None claims are True). A free key is taken here, before the request's messages are written, and
    `keep` writes its answer: the unique key is what serialises two nodes given the same key at
    once (PostgreSQL makes the second insert wait for the first transaction, then skip the row), so
    the second one replays the first one's answer instead of failing on the key at its commit. Two
    batches that take two keys in opposite orders deadlock; PostgreSQL aborts one of them, and the
    writer runs its requests again one by one. A key kept longer ago than the TTL is deleted first,
    for this transaction to take it again."""
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
        cutoff = to_ms(r.now - TTL)
        if pk in taken or (created is not None and created >= cutoff):
            out.append(False)
            continue
        if created is not None:  # kept longer ago than the TTL: the key is free again
            await conn.execute(
                delete(idempotency_keys).where(
                    _K.account_id == pk[0], _K.key == pk[1], _K.created_at < cutoff
                )
            )
        took = await conn.execute(_take(conn, r.account_id, r.key, r.body_digest, to_ms(r.now)))
        if took.first() is None:  # another node's transaction took it since the read above
            out.append(False)
            continue
        taken.add(pk)
        out.append(True)
    return out


def _take(conn: AsyncConnection, account_id: int, key: str, digest: str, now_ms: int) -> Any:
    """The key's row, without its answer yet (status 0), unless a committed or concurrent
    transaction holds it; RETURNING tells which."""
    return (
        conflict_insert(idempotency_keys, pg=conn.dialect.name == "postgresql")
        .values(
            account_id=account_id, key=key, body_digest=digest, status_code=0, response="", created_at=now_ms
        )
        .on_conflict_do_nothing(index_elements=[_K.account_id, _K.key])
        .returning(_K.key)
    )


async def keep(conn: AsyncConnection, claim: IdempotencyClaim, inserted: list[bool]) -> None:
    """Write the 200 answer for these insert results to a key `free` took in this transaction."""
    r = claim.request
    await conn.execute(
        update(idempotency_keys)
        .where(_K.account_id == r.account_id, _K.key == r.key)
        .values(status_code=200, response=claim.answer(inserted).decode())
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
