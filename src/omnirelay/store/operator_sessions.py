"""The operator's console sessions (docs/console.md#sign-in-and-sessions): digests only, shared by
every node on the database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from omnirelay.domain.times import to_ms
from omnirelay.store.engine import reading
from omnirelay.store.tables import operator_sessions
from omnirelay.store.writer import Writer

_S = operator_sessions.c


class SqlOperatorSessions:
    def __init__(self, engine: AsyncEngine, writer: Writer) -> None:
        self._engine = engine
        self._writer = writer

    async def create(self, token_digest: str, now: datetime) -> None:
        stmt = insert(operator_sessions).values(token_digest=token_digest, last_used_at=to_ms(now))
        await self._writer.run(lambda conn: conn.execute(stmt))

    async def last_used(self, token_digest: str) -> int | None:
        """When the session was last used (epoch ms), or None when there is none."""
        async with reading(self._engine) as conn:
            row = (await conn.execute(select(_S.last_used_at).where(_S.token_digest == token_digest))).first()
        return None if row is None else int(row.last_used_at)

    async def touch(self, token_digest: str, now: datetime) -> None:
        stmt = (
            update(operator_sessions).where(_S.token_digest == token_digest).values(last_used_at=to_ms(now))
        )
        await self._writer.run(lambda conn: conn.execute(stmt))

    async def delete(self, token_digest: str, *, idle_before: datetime | None = None) -> None:
        """Delete this session, and those last used before `idle_before`."""
        cond = _S.token_digest == token_digest
        if idle_before is not None:
            cond = cond | (_S.last_used_at < to_ms(idle_before))
        stmt = delete(operator_sessions).where(cond)
        await self._writer.run(lambda conn: conn.execute(stmt))
