"""`SqlInboundStore`: what the Meta webhook writes, and the query watermarks need.

An inbound event is accepted in one transaction: its dedupe key, the person's registration and
the forwards to the application's `webhookUrl` commit together or not at all. So a crash before
the commit leaves nothing (Meta's retry redoes it all), and a retry after the commit is a no-op.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, insert, literal_column, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from omnirelay.domain.failover import Phase
from omnirelay.domain.messages import Channel
from omnirelay.domain.statuses import EXPIRED_EXPIRED
from omnirelay.domain.times import to_ms
from omnirelay.ports import MessengerUser, NewForward, Registration
from omnirelay.store.applications import register_user
from omnirelay.store.applications import user_from_row as _user
from omnirelay.store.engine import reading
from omnirelay.store.tables import attempts, channel_refs, forwards, messages, messenger_users, webhook_events
from omnirelay.store.writer import Writer

_FACEBOOK: ColumnElement[str] = literal_column(f"'{Channel.FACEBOOK.value}'")
# a literal, not a parameter: a bound parameter cannot imply a partial index's condition
_EXPIRED: ColumnElement[int] = literal_column(str(EXPIRED_EXPIRED.id))


class SqlInboundStore:
    def __init__(self, engine: AsyncEngine, writer: Writer) -> None:
        self._engine = engine
        self._writer = writer

    async def accept_inbound(
        self,
        dedupe_key: str,
        user: MessengerUser,
        now: datetime,
        forwards_for: Callable[[Registration], Sequence[NewForward]],
    ) -> Registration | None:
        now_ms = to_ms(now)

        async def unit(conn: AsyncConnection) -> Registration | None:
            if await _seen(conn, dedupe_key):
                return None
            await conn.execute(
                insert(webhook_events).values(
                    dedupe_key=dedupe_key, application_key=user.application_key, received_at=now_ms
                )
            )
            registration = Registration(*await register_user(conn, user, now_ms))
            rows = [
                {
                    "application_key": user.application_key,
                    "url": f.url,
                    "body": f.body.decode(),
                    "created_at": now_ms,
                    "next_try_at": now_ms,
                    "tries": 0,
                }
                for f in forwards_for(registration)
            ]
            if rows:
                await conn.execute(insert(forwards), rows)
            return registration

        result: Registration | None = await self._writer.run(unit)
        return result

    async def seen(self, dedupe_key: str) -> bool:
        async with reading(self._engine) as conn:
            return await _seen(conn, dedupe_key)

    async def mark_seen(self, dedupe_key: str, application_key: str, now: datetime) -> None:
        async def unit(conn: AsyncConnection) -> None:
            if not await _seen(conn, dedupe_key):
                await conn.execute(
                    insert(webhook_events).values(
                        dedupe_key=dedupe_key, application_key=application_key, received_at=to_ms(now)
                    )
                )

        await self._writer.run(unit)

    async def user_by_psid(self, application_key: str, psid: str) -> MessengerUser | None:
        async with reading(self._engine) as conn:
            row = (
                await conn.execute(
                    select(messenger_users).where(
                        messenger_users.c.application_key == application_key,
                        messenger_users.c.psid == psid,
                    )
                )
            ).first()
        return _user(row) if row is not None else None

    async def waiting_refs(
        self, application_key: str, addresses: Sequence[str], sent_until: datetime
    ) -> list[str]:
        if not addresses:
            return []
        stmt = (
            select(channel_refs.c.ref)
            .select_from(
                channel_refs.join(
                    attempts,
                    and_(
                        attempts.c.message_pk == channel_refs.c.message_pk,
                        attempts.c.step_index == channel_refs.c.step_index,
                    ),
                ).join(messages, messages.c.id == channel_refs.c.message_pk)
            )
            .where(
                # From the person's open Messenger attempts (`ix_attempts_open_facebook`: its terms
                # are written out, a bound parameter cannot imply the partial index's condition) to
                # their refs. The refs of a Messenger attempt are Messenger's: a `channel_refs.channel`
                # term here made SQLite walk every Messenger ref by the key's prefix instead.
                channel_refs.c.delivered.is_(False),
                attempts.c.channel == _FACEBOOK,
                attempts.c.done_at.is_(None),
                attempts.c.sender == application_key,
                attempts.c.to.in_(list(addresses)),
                attempts.c.sent_at <= to_ms(sent_until),
                messages.c.phase == Phase.WAITING.value,
                messages.c.step_index == channel_refs.c.step_index,
            )
            .order_by(channel_refs.c.message_pk)
        )
        async with reading(self._engine) as conn:
            return [r.ref for r in (await conn.execute(stmt)).all()]

    async def expired_refs(
        self, application_key: str, addresses: Sequence[str], sent_until: datetime, *, read: bool
    ) -> list[str]:
        if not addresses:
            return []
        a = attempts.c
        stmt = (
            select(channel_refs.c.ref)
            .select_from(
                attempts.join(
                    channel_refs,
                    and_(
                        channel_refs.c.message_pk == a.message_pk, channel_refs.c.step_index == a.step_index
                    ),
                )
            )
            .where(
                # the terms of `ix_attempts_unread_facebook`, written out
                a.channel == _FACEBOOK,
                a.status_id == _EXPIRED,
                a.seen_at.is_(None),
                a.sender == application_key,
                a.to.in_(list(addresses)),
                a.sent_at <= to_ms(sent_until),
            )
            .order_by(channel_refs.c.message_pk)
        )
        if not read:
            # a delivery: only for a step that heard of none, on time or late (every later delivery
            # event's watermark covers it again)
            stmt = stmt.where(a.delivered_at.is_(None), a.late_at.is_(None))
        async with reading(self._engine) as conn:
            return [r.ref for r in (await conn.execute(stmt)).all()]


async def _seen(conn: AsyncConnection, dedupe_key: str) -> bool:
    found = (
        await conn.execute(
            select(webhook_events.c.dedupe_key).where(webhook_events.c.dedupe_key == dedupe_key)
        )
    ).first()
    return found is not None
