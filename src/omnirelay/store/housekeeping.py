"""Retention (docs/api.md#retention): drop what is past its window, in bounded chunks so no transaction runs
long."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from omnirelay.domain.times import to_ms
from omnirelay.ports import ReportState, Retention
from omnirelay.store.tables import (
    attempts,
    channel_refs,
    forwards,
    idempotency_keys,
    messages,
    reports,
    webhook_events,
)
from omnirelay.store.writer import Writer

CHUNK = 5000


class SqlHousekeeping:
    def __init__(self, writer: Writer) -> None:
        self._writer = writer

    async def purge(self, now: datetime, retention: Retention) -> int:
        """One round; returns how many rows went (call again while it returns a full chunk)."""

        def before(seconds: float) -> int:
            return to_ms(now - timedelta(seconds=seconds))

        async def unit(conn: AsyncConnection) -> int:
            removed = 0
            r = reports.c
            removed += await self._chunk(
                conn,
                reports,
                r.id,
                (r.state == ReportState.DONE.value, r.created_at < before(retention.done_report_s)),
            )
            removed += await self._chunk(
                conn,
                reports,
                r.id,
                (r.state == ReportState.PULL.value, r.created_at < before(retention.report_s)),
            )
            m = messages.c
            old = (
                (
                    await conn.execute(
                        select(m.id)
                        .where(m.phase == "DONE", m.done_at < before(retention.log_s))
                        .limit(CHUNK)
                    )
                )
                .scalars()
                .all()
            )
            if old:
                await conn.execute(delete(attempts).where(attempts.c.message_pk.in_(old)))
                await conn.execute(delete(channel_refs).where(channel_refs.c.message_pk.in_(old)))
                await conn.execute(
                    delete(reports).where(
                        reports.c.message_pk.in_(old), reports.c.state != ReportState.PUSH.value
                    )
                )
                await conn.execute(delete(messages).where(m.id.in_(old)))
                removed += len(old)
            k = idempotency_keys.c
            removed += (
                await conn.execute(
                    delete(idempotency_keys).where(k.created_at < before(retention.idempotency_s))
                )
            ).rowcount or 0
            removed += (
                await conn.execute(
                    delete(webhook_events).where(
                        webhook_events.c.received_at < before(retention.webhook_event_s)
                    )
                )
            ).rowcount or 0
            removed += (
                await conn.execute(
                    delete(forwards).where(
                        forwards.c.next_try_at.is_(None),
                        forwards.c.created_at < before(retention.done_report_s),
                    )
                )
            ).rowcount or 0
            return removed

        return await self._writer.run(unit)

    @staticmethod
    async def _chunk(conn: AsyncConnection, table: object, key: object, conds: tuple[object, ...]) -> int:
        ids = (await conn.execute(select(key).where(*conds).limit(CHUNK))).scalars().all()  # type: ignore[call-overload]
        if not ids:
            return 0
        await conn.execute(delete(table).where(key.in_(ids)))  # type: ignore[arg-type, attr-defined]
        return len(ids)
