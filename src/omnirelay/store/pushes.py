"""The push outbox: reports in state PUSH, claimed with a lease like messages are."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from omnirelay.domain.times import from_ms, to_ms
from omnirelay.ports import DuePush, PushSettlement, ReportState
from omnirelay.store.tables import reports
from omnirelay.store.writer import Writer


class SqlPushStore:
    def __init__(self, engine: AsyncEngine, writer: Writer) -> None:
        self._writer = writer
        self._pg = engine.dialect.name == "postgresql"

    async def claim_pushes(self, now: datetime, lease_s: float, limit: int) -> list[DuePush]:
        r = reports.c
        pick = (
            reports.select()
            .with_only_columns(r.id)
            .where(r.state == ReportState.PUSH.value, r.next_push_at <= to_ms(now))
            .order_by(r.next_push_at)
            .limit(limit)
        )
        if self._pg:
            pick = pick.with_for_update(skip_locked=True)
        stmt = (
            update(reports)
            .where(r.id.in_(pick.scalar_subquery()))
            .values(next_push_at=to_ms(now + timedelta(seconds=lease_s)))
            .returning(r.id, r.notify_url, r.body, r.push_tries, r.created_at, r.kind, r.message_id)
        )

        async def unit(conn: AsyncConnection) -> list[DuePush]:
            rows = (await conn.execute(stmt)).all()
            return [
                DuePush(
                    row.id,
                    row.notify_url or "",
                    row.body.encode(),
                    row.push_tries,
                    from_ms(row.created_at),
                    row.kind,
                    row.message_id,
                )
                for row in sorted(rows, key=lambda x: x.id)
            ]

        return await self._writer.run(unit)

    async def settle_pushes(self, settlements: Sequence[PushSettlement]) -> None:
        items = list(settlements)

        async def unit(conn: AsyncConnection) -> None:
            for s in items:
                values: dict[str, object] = {"state": s.state.value, "push_tries": s.tries}
                values["next_push_at"] = to_ms(s.retry_at) if s.retry_at is not None else None
                await conn.execute(
                    update(reports)
                    .where(reports.c.id == s.report_id, reports.c.state == ReportState.PUSH.value)
                    .values(**values)
                )

        await self._writer.run(unit)
