"""Message logs (docs/api.md#logs): newest first, not consumed by reading, with per-step attempts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, not_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from omnirelay.domain.statuses import (
    EC_TIME_OUT,
    EC_VALIDITY_EXPIRED,
    ERRORS,
    STATUSES,
    ErrorCode,
    Status,
    error_for_code,
)
from omnirelay.domain.times import from_ms, to_ms
from omnirelay.ports import Api, FunnelRow, LogAttempt, LogFilter, LogRow
from omnirelay.store import codec
from omnirelay.store.engine import reading
from omnirelay.store.tables import attempts, messages

_SUCCESS = sorted(s.id for s in STATUSES.values() if s.is_success)
_EXPIRIES = (EC_VALIDITY_EXPIRED.id, EC_TIME_OUT.id)  # the engine's own (services.transitions.funnel_outcome)


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _status(status_id: int) -> Status:
    return STATUSES[status_id]


def _error(error_id: int) -> ErrorCode:
    return ERRORS.get(error_id) or error_for_code(error_id)


class SqlLogStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def logs(self, account_id: int, api: Api, flt: LogFilter) -> list[LogRow]:
        m = messages.c
        stmt = select(messages).where(m.account_id == account_id, m.api == api.value)
        if flt.sender is not None:
            stmt = stmt.where(m.sent_from == flt.sender)
        if flt.to is not None:
            stmt = stmt.where(m.sent_to == flt.to)
        if flt.bulk_ids:
            stmt = stmt.where(m.bulk_id.in_(flt.bulk_ids))
        if flt.message_ids:
            stmt = stmt.where(m.message_id.in_(flt.message_ids))
        if flt.status_ids is not None:
            stmt = stmt.where(m.status_id.in_(flt.status_ids))
        if flt.channel is not None:
            stmt = stmt.where(m.channel == flt.channel)
        if flt.sent_since is not None:
            stmt = stmt.where(m.created_at >= to_ms(flt.sent_since))
        if flt.sent_until is not None:
            stmt = stmt.where(m.created_at <= to_ms(flt.sent_until))
        stmt = stmt.order_by(m.created_at.desc(), m.id.desc()).limit(flt.limit)
        async with reading(self._engine) as conn:
            rows = (await conn.execute(stmt)).all()
            tries: dict[int, list[Any]] = {}
            if rows:
                found = await conn.execute(
                    select(attempts)
                    .where(attempts.c.message_pk.in_([r.id for r in rows]))
                    .order_by(attempts.c.message_pk, attempts.c.step_index)
                )
                for a in found.all():
                    tries.setdefault(a.message_pk, []).append(a)
        return [self._row(r, tries.get(r.id, [])) for r in rows]

    @staticmethod
    def _row(r: Any, tried: Sequence[Any]) -> LogRow:
        plan = codec.decode_plan(r.plan) if tried else ()
        return LogRow(
            message_id=r.message_id,
            bulk_id=r.bulk_id,
            to=r.sent_to or "",
            sender=r.sent_from or "",
            text=r.text,
            created_at=from_ms(r.created_at),
            sent_at=from_ms(r.sent_at) if r.sent_at is not None else None,
            done_at=from_ms(r.done_at) if r.done_at is not None else None,
            message_count=r.message_count,
            status=_status(r.status_id),
            error=_error(r.error_id),
            channel=r.channel or "",
            attempts=tuple(
                LogAttempt(
                    channel=a.channel,
                    to=a.to,
                    status=_status(a.status_id),
                    error=_error(a.error_id),
                    sent_at=from_ms(a.sent_at) if a.sent_at is not None else None,
                    done_at=from_ms(a.done_at) if a.done_at is not None else None,
                    late_status=_status(a.late_status_id) if a.late_status_id is not None else None,
                    late_at=from_ms(a.late_at) if a.late_at is not None else None,
                    criterion=plan[a.step_index].criterion,
                    delivered_at=from_ms(a.delivered_at) if a.delivered_at is not None else None,
                    seen_at=from_ms(a.seen_at) if a.seen_at is not None else None,
                )
                for a in tried
            ),
        )

    async def funnel(self, account_id: int | None, since: datetime, until: datetime) -> list[FunnelRow]:
        """Classified as the funnel counters are (`services.transitions.funnel_outcome`): an attempt
        with a success status met its criterion (the engine ends a step well on nothing else); a
        failed one expired (the engine's expiry errors), or was refused before it was sent (no
        sentAt), or failed after (a failure receipt)."""
        a, m = attempts.c, messages.c
        success = a.status_id.in_(_SUCCESS)
        failed = and_(a.done_at.is_not(None), not_(success))
        expired = and_(failed, a.error_id.in_(_EXPIRIES))
        not_expired = and_(failed, a.error_id.not_in(_EXPIRIES))
        stmt = (
            select(
                m.scenario_key,
                a.step_index,
                a.channel,
                func.count(a.sent_at).label("sent"),
                _count(and_(a.done_at.is_not(None), success)).label("met"),
                _count(and_(not_expired, a.sent_at.is_(None))).label("failed_rejected"),
                _count(and_(not_expired, a.sent_at.is_not(None))).label("failed_receipt"),
                _count(expired).label("failed_expired"),
                _count(and_(failed, a.late_status_id.in_(_SUCCESS))).label("late_success"),
            )
            .select_from(attempts.join(messages, m.id == a.message_pk))
            .where(
                m.created_at >= to_ms(since),
                m.created_at < to_ms(until),
                m.api == Api.OMNI.value,
            )
            .group_by(m.scenario_key, a.step_index, a.channel)
            .order_by(m.scenario_key, a.step_index, a.channel)
        )
        if account_id is not None:  # ix_messages_account_created: the account's messages of the period
            stmt = stmt.where(m.account_id == account_id)
        async with reading(self._engine) as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            FunnelRow(
                scenario_key=r.scenario_key,
                step_index=r.step_index,
                channel=r.channel,
                sent=int(r.sent),
                met=int(r.met),
                failed_rejected=int(r.failed_rejected),
                failed_receipt=int(r.failed_receipt),
                failed_expired=int(r.failed_expired),
                late_success=int(r.late_success),
            )
            for r in rows
        ]
