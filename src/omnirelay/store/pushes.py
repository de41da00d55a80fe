"""The push outbox: reports in state PUSH, claimed with a lease like messages are (store.claims)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from omnirelay.domain.times import from_ms, to_ms
from omnirelay.ports import DuePush, PushSettlement, ReportState
from omnirelay.store import claims
from omnirelay.store.tables import reports
from omnirelay.store.writer import Writer

_r = reports.c
_PUSHES = claims.Outbox(
    reports, _r.id, _r.next_push_at, _r.push_token, _r.push_lease_until, (_r.state == ReportState.PUSH.value,)
)

# A settlement is written only while its claim holds the report: same token, still in PUSH.
_SETTLE = (
    update(reports)
    .where(
        _r.id == bindparam("s_id"),
        _r.push_token == bindparam("s_token"),
        _r.state == ReportState.PUSH.value,
    )
    .values(
        state=bindparam("s_state"),
        push_tries=bindparam("s_tries"),
        next_push_at=bindparam("s_next"),
        push_lease_until=None,
    )
)


class SqlPushStore:
    def __init__(self, engine: AsyncEngine, writer: Writer) -> None:
        self._writer = writer
        self._pg = engine.dialect.name == "postgresql"

    async def claim_pushes(self, now: datetime, lease_s: float, limit: int) -> list[DuePush]:
        stmt = claims.claim(_PUSHES, now_ms=to_ms(now), lease_s=lease_s, limit=limit, pg=self._pg).returning(
            _r.id, _r.notify_url, _r.body, _r.push_tries, _r.created_at, _r.kind, _r.message_id, _r.push_token
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
                    row.push_token,
                )
                for row in sorted(rows, key=lambda x: x.id)
            ]

        return await self._writer.run(unit)

    async def settle_pushes(self, settlements: Sequence[PushSettlement]) -> list[bool]:
        items = list(settlements)

        async def unit(conn: AsyncConnection) -> list[bool]:
            out = []
            for s in items:
                result = await conn.execute(
                    _SETTLE,
                    {
                        "s_id": s.report_id,
                        "s_token": s.token,
                        "s_state": s.state.value,
                        "s_tries": s.tries,
                        "s_next": to_ms(s.retry_at) if s.retry_at is not None else None,
                    },
                )
                out.append(result.rowcount == 1)
            return out

        return await self._writer.run(unit)
