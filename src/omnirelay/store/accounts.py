"""Accounts, API key digests and IBSSO sessions. Only digests and password hashes are stored."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from omnirelay.domain.times import to_ms
from omnirelay.store.engine import reading
from omnirelay.store.tables import accounts, api_keys, auth_sessions
from omnirelay.store.writer import Writer


class SqlAccountStore:
    def __init__(self, engine: AsyncEngine, writer: Writer) -> None:
        self._engine = engine
        self._writer = writer

    async def create_account(self, username: str, password_hash: str, now: datetime) -> int:
        async def unit(conn: AsyncConnection) -> int:
            stmt = insert(accounts).values(
                username=username, password_hash=password_hash, created_at=to_ms(now)
            )
            return int((await conn.execute(stmt.returning(accounts.c.id))).scalar_one())

        return await self._writer.run(unit)

    async def account_by_username(self, username: str) -> tuple[int, str] | None:
        async with reading(self._engine) as conn:
            row = (
                await conn.execute(
                    select(accounts.c.id, accounts.c.password_hash).where(accounts.c.username == username)
                )
            ).first()
        return (int(row.id), str(row.password_hash)) if row is not None else None

    async def add_api_key(self, account_id: int, name: str, key_digest: str, now: datetime) -> None:
        async def unit(conn: AsyncConnection) -> None:
            await conn.execute(
                insert(api_keys).values(
                    account_id=account_id, name=name, key_digest=key_digest, created_at=to_ms(now)
                )
            )

        await self._writer.run(unit)

    async def account_by_key_digest(self, key_digest: str) -> int | None:
        async with reading(self._engine) as conn:
            value = (
                await conn.execute(select(api_keys.c.account_id).where(api_keys.c.key_digest == key_digest))
            ).scalar_one_or_none()
        return int(value) if value is not None else None

    async def create_session(self, token_digest: str, account_id: int, now: datetime) -> None:
        async def unit(conn: AsyncConnection) -> None:
            await conn.execute(
                insert(auth_sessions).values(
                    token_digest=token_digest, account_id=account_id, last_used_at=to_ms(now)
                )
            )

        await self._writer.run(unit)

    async def session(self, token_digest: str) -> tuple[int, int] | None:
        """(account id, last used ms) of a session."""
        async with reading(self._engine) as conn:
            row = (
                await conn.execute(
                    select(auth_sessions.c.account_id, auth_sessions.c.last_used_at).where(
                        auth_sessions.c.token_digest == token_digest
                    )
                )
            ).first()
        return (int(row.account_id), int(row.last_used_at)) if row is not None else None

    async def touch_session(self, token_digest: str, now: datetime) -> None:
        async def unit(conn: AsyncConnection) -> None:
            await conn.execute(
                update(auth_sessions)
                .where(auth_sessions.c.token_digest == token_digest)
                .values(last_used_at=to_ms(now))
            )

        await self._writer.run(unit)

    async def delete_session(self, token_digest: str) -> None:
        async def unit(conn: AsyncConnection) -> None:
            await conn.execute(delete(auth_sessions).where(auth_sessions.c.token_digest == token_digest))

        await self._writer.run(unit)
