"""Messenger applications and users; implements the `MessengerDirectory` port.

Lookups on the send path are cached for a few seconds (`store.cache.ReadCache`: concurrent misses
share one read, a write made through this store drops the cache): an application or user changes
rarely.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from omnirelay.domain.times import to_ms
from omnirelay.ports import MessengerApplication, MessengerUser
from omnirelay.store.cache import ReadCache
from omnirelay.store.engine import one_of, reading
from omnirelay.store.tables import applications, messenger_users, webhook_events
from omnirelay.store.writer import Writer

# Every Messenger send by phone number looks its number up, and those are mostly distinct numbers:
# cache misses. The misses of a moment are answered by one query per application (`user_by_phone`).
_PHONES_PER_QUERY = 500


def _app(row: Row[Any]) -> MessengerApplication:
    return MessengerApplication(
        key=row.key,
        account_id=int(row.account_id),
        name=row.name,
        page_id=row.page_id,
        page_access_token=row.page_access_token,
        app_secret=row.app_secret,
        verify_token=row.verify_token,
        webhook_url=row.webhook_url,
    )


def user_from_row(row: Any) -> MessengerUser:
    """A `messenger_users` row as the port's value (also used by the inbound store)."""
    return MessengerUser(
        user_key=row.user_key,
        application_key=row.application_key,
        psid=row.psid,
        phone_number=row.phone_number,
    )


async def register_user(
    conn: AsyncConnection, user: MessengerUser, now_ms: int
) -> tuple[MessengerUser, bool]:
    """Register (application, psid) once, in the caller's transaction: the user as stored, and
    whether it is new. A known user only has its last interaction moved to now."""
    row = (
        await conn.execute(
            select(messenger_users).where(
                messenger_users.c.application_key == user.application_key,
                messenger_users.c.psid == user.psid,
            )
        )
    ).first()
    if row is not None:
        await conn.execute(
            update(messenger_users)
            .where(messenger_users.c.user_key == row.user_key)
            .values(last_interaction_at=now_ms)
        )
        return user_from_row(row), False
    await conn.execute(
        insert(messenger_users).values(
            user_key=user.user_key,
            application_key=user.application_key,
            psid=user.psid,
            phone_number=user.phone_number,
            created_at=now_ms,
            last_interaction_at=now_ms,
        )
    )
    return user, True


class SqlApplicationStore:
    def __init__(self, engine: AsyncEngine, writer: Writer) -> None:
        self._engine = engine
        self._pg = engine.dialect.name == "postgresql"
        self._writer = writer
        self._reads = ReadCache(engine)
        self._phones: dict[tuple[str, str], list[asyncio.Future[MessengerUser | None]]] = {}
        self._phones_task: asyncio.Task[None] | None = None

    async def _write(self, unit: Any) -> Any:
        return await self._reads.writing(self._writer.run(unit))

    # -- MessengerDirectory -----------------------------------------------------------------

    async def application(self, key: str) -> MessengerApplication | None:
        async def load(conn: AsyncConnection) -> MessengerApplication | None:
            row = (await conn.execute(select(applications).where(applications.c.key == key))).first()
            return _app(row) if row is not None else None

        return await self._reads.get(("app", key), load)  # type: ignore[no-any-return]

    async def user(self, application_key: str, user_key: str) -> MessengerUser | None:
        async def load(conn: AsyncConnection) -> MessengerUser | None:
            stmt = select(messenger_users).where(
                messenger_users.c.user_key == user_key, messenger_users.c.application_key == application_key
            )
            row = (await conn.execute(stmt)).first()
            return user_from_row(row) if row else None

        return await self._reads.get(("user", application_key, user_key), load)  # type: ignore[no-any-return]

    async def user_by_phone(self, application_key: str, phone_number: str) -> MessengerUser | None:
        """Misses wait for the next batch query: the numbers asked meanwhile, one query per
        application (the dispatcher sends up to 64 Messenger messages at once)."""
        hit, value = self._reads.peek(("phone", application_key, phone_number))
        if hit:
            return value  # type: ignore[no-any-return]
        # each waiter its own future (awaited directly, no shield: a waiter that is cancelled
        # cancels only its own), the waiters of one number answered by one row
        fut: asyncio.Future[MessengerUser | None] = asyncio.get_running_loop().create_future()
        waiters = self._phones.get((application_key, phone_number))
        if waiters is None:
            self._phones[(application_key, phone_number)] = [fut]
            if self._phones_task is None:
                self._phones_task = asyncio.create_task(self._look_up_phones())
        else:
            waiters.append(fut)
        return await fut

    async def _look_up_phones(self) -> None:
        """Answer the waiting phone look-ups, batch after batch, until none is left."""
        try:
            await asyncio.sleep(0)  # the look-ups of this turn of the loop join the first batch
            while self._phones:
                waiting, self._phones = self._phones, {}
                await self._answer_phones(waiting)
        finally:
            self._phones_task = None

    async def _answer_phones(
        self, waiting: dict[tuple[str, str], list[asyncio.Future[MessengerUser | None]]]
    ) -> None:
        generation = self._reads.generation
        by_app: dict[str, list[str]] = {}
        for app_key, phone in waiting:
            by_app.setdefault(app_key, []).append(phone)
        found: dict[tuple[str, str], MessengerUser] = {}
        try:
            async with reading(self._engine) as conn:
                for app_key, phones in by_app.items():
                    for i in range(0, len(phones), _PHONES_PER_QUERY):
                        chunk = phones[i : i + _PHONES_PER_QUERY]
                        rows = await conn.execute(
                            select(messenger_users)
                            .where(
                                messenger_users.c.application_key == app_key,
                                one_of(messenger_users.c.phone_number, chunk, pg=self._pg),
                            )
                            .order_by(messenger_users.c.created_at)
                        )
                        for row in rows:  # oldest first: the first user registered with the number
                            found.setdefault((app_key, row.phone_number), user_from_row(row))
        except BaseException as exc:  # every waiter gets the error; the next batch tries again
            for futs in waiting.values():
                for fut in futs:
                    if not fut.done():
                        if isinstance(exc, Exception):
                            fut.set_exception(exc)
                        else:
                            fut.cancel()  # shutting down
            if not isinstance(exc, Exception):
                raise
            return
        for key, futs in waiting.items():
            user = found.get(key)
            self._reads.remember(("phone", *key), user, generation)
            for fut in futs:
                if not fut.done():
                    fut.set_result(user)

    # -- management -------------------------------------------------------------------------

    async def create_application(self, app: MessengerApplication, now: datetime) -> None:
        async def unit(conn: AsyncConnection) -> None:
            await conn.execute(
                insert(applications).values(
                    key=app.key,
                    account_id=app.account_id,
                    name=app.name,
                    page_id=app.page_id,
                    page_access_token=app.page_access_token,
                    app_secret=app.app_secret,
                    verify_token=app.verify_token,
                    webhook_url=app.webhook_url,
                    created_at=to_ms(now),
                )
            )

        await self._write(unit)

    async def update_application(self, app: MessengerApplication) -> None:
        async def unit(conn: AsyncConnection) -> None:
            await conn.execute(
                update(applications)
                .where(applications.c.key == app.key, applications.c.account_id == app.account_id)
                .values(
                    name=app.name,
                    page_id=app.page_id,
                    page_access_token=app.page_access_token,
                    app_secret=app.app_secret,
                    verify_token=app.verify_token,
                    webhook_url=app.webhook_url,
                )
            )

        await self._write(unit)

    async def delete_application(self, account_id: int, key: str) -> bool:
        async def unit(conn: AsyncConnection) -> bool:
            res = await conn.execute(
                delete(applications).where(applications.c.key == key, applications.c.account_id == account_id)
            )
            if res.rowcount:
                await conn.execute(delete(messenger_users).where(messenger_users.c.application_key == key))
            return bool(res.rowcount)

        return bool(await self._write(unit))

    async def list_applications(self, account_id: int) -> list[MessengerApplication]:
        async with reading(self._engine) as conn:
            rows = (
                await conn.execute(
                    select(applications)
                    .where(applications.c.account_id == account_id)
                    .order_by(applications.c.created_at, applications.c.key)
                )
            ).all()
        return [_app(r) for r in rows]

    async def applications_for_page(self, page_id: str) -> list[MessengerApplication]:
        async with reading(self._engine) as conn:
            rows = (await conn.execute(select(applications).where(applications.c.page_id == page_id))).all()
        return [_app(r) for r in rows]

    async def add_user(self, user: MessengerUser, now: datetime) -> MessengerUser:
        """Register (application, psid) once; returns the existing user when already known."""

        async def unit(conn: AsyncConnection) -> MessengerUser:
            registered, _ = await register_user(conn, user, to_ms(now))
            return registered

        result: MessengerUser = await self._write(unit)
        return result

    async def list_users(self, application_key: str, limit: int, offset: int) -> list[MessengerUser]:
        async with reading(self._engine) as conn:
            rows = (
                await conn.execute(
                    select(messenger_users)
                    .where(messenger_users.c.application_key == application_key)
                    .order_by(messenger_users.c.created_at, messenger_users.c.user_key)
                    .limit(limit)
                    .offset(offset)
                )
            ).all()
        return [user_from_row(r) for r in rows]

    async def set_user_phone(self, application_key: str, user_key: str, phone_number: str | None) -> bool:
        async def unit(conn: AsyncConnection) -> bool:
            res = await conn.execute(
                update(messenger_users)
                .where(
                    messenger_users.c.application_key == application_key,
                    messenger_users.c.user_key == user_key,
                )
                .values(phone_number=phone_number)
            )
            return bool(res.rowcount)

        return bool(await self._write(unit))

    async def delete_user(self, application_key: str, user_key: str) -> bool:
        async def unit(conn: AsyncConnection) -> bool:
            res = await conn.execute(
                delete(messenger_users).where(
                    messenger_users.c.application_key == application_key,
                    messenger_users.c.user_key == user_key,
                )
            )
            return bool(res.rowcount)

        return bool(await self._write(unit))

    async def first_seen(self, dedupe_key: str, application_key: str, now: datetime) -> bool:
        """Record a webhook event key; False when it was seen before (Meta retries)."""

        async def unit(conn: AsyncConnection) -> bool:
            seen = (
                await conn.execute(
                    select(webhook_events.c.dedupe_key).where(webhook_events.c.dedupe_key == dedupe_key)
                )
            ).first()
            if seen is not None:
                return False
            await conn.execute(
                insert(webhook_events).values(
                    dedupe_key=dedupe_key, application_key=application_key, received_at=to_ms(now)
                )
            )
            return True

        return bool(await self._writer.run(unit))
