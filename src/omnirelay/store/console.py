"""What the console reads (docs/console.md): message search, a message's journey, the overview.

Reads only, outside the writer. Searches are newest first with keyset pagination on
(created_at, id), each on an index (docs/console.md#search-and-indexes); the overview reads a
bounded window of recent rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from omnirelay.domain.scenarios import Scenario
from omnirelay.domain.statuses import ERRORS, STATUSES, ErrorCode, Status, StatusGroup, error_for_code
from omnirelay.domain.times import from_ms, to_ms
from omnirelay.ports import (
    ConsoleMessage,
    ConsolePage,
    ConsoleQuery,
    FunnelStep,
    Journey,
    JourneyAttempt,
    JourneyReport,
    Overview,
)
from omnirelay.store import codec
from omnirelay.store.engine import reading
from omnirelay.store.scenarios import scenario_of
from omnirelay.store.tables import accounts, attempts, channel_refs, messages, reports, scenarios

# The overview reads at most this many rows of each kind from its window: bounded work per poll.
OVERVIEW_ROWS = 20_000
_m = messages.c


def _status(status_id: int) -> Status:
    return STATUSES[status_id]


def _error(error_id: int) -> ErrorCode:
    return ERRORS.get(error_id) or error_for_code(error_id)


def _ms(value: int | None) -> datetime | None:
    return from_ms(value) if value is not None else None


def _message(r: Any) -> ConsoleMessage:
    return ConsoleMessage(
        pk=r.id,
        account_id=r.account_id,
        message_id=r.message_id,
        bulk_id=r.bulk_id,
        api=r.api,
        to=r.sent_to or "",
        channel=r.channel or "",
        status=_status(r.status_id),
        error=_error(r.error_id),
        created_at=from_ms(r.created_at),
        done_at=_ms(r.done_at),
        text=r.text,
        cursor=(r.created_at, r.id),
    )


def _owned(stmt: Select[Any], account_id: int | None, *, seek: bool) -> Select[Any]:
    """Only the account's rows. The operator's search that seeks an (account_id, ...) index (by
    message id, bulk id or destination) names every account, so that it is still a seek."""
    if account_id is not None:
        return stmt.where(_m.account_id == account_id)
    if seek:
        return stmt.where(_m.account_id.in_(select(accounts.c.id).scalar_subquery()))
    return stmt


def search_statement(account_id: int | None, q: ConsoleQuery) -> Select[Any]:
    """The search, newest first, one row more than a page: whether there is a next page, without
    a count. Each shape seeks an index (docs/console.md#search-and-indexes)."""
    stmt = select(messages)
    if q.message_id is not None:
        stmt = stmt.where(_m.message_id == q.message_id)
    if q.bulk_id is not None:
        stmt = stmt.where(_m.bulk_id == q.bulk_id)
    if q.to is not None:
        stmt = stmt.where(_m.sent_to == q.to)
    seek = q.message_id is not None or q.bulk_id is not None or q.to is not None
    stmt = _owned(stmt, account_id, seek=seek)
    if q.status_ids is not None:
        stmt = stmt.where(_m.status_id.in_(q.status_ids))
    if q.channel is not None:
        stmt = stmt.where(_m.channel == q.channel)
    if q.since is not None:
        stmt = stmt.where(_m.created_at >= to_ms(q.since))
    if q.until is not None:
        stmt = stmt.where(_m.created_at <= to_ms(q.until))
    if q.before is not None:
        stmt = stmt.where(tuple_(_m.created_at, _m.id) < tuple_(*q.before))
    return stmt.order_by(_m.created_at.desc(), _m.id.desc()).limit(q.limit + 1)


class SqlConsoleStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def search(self, account_id: int | None, query: ConsoleQuery) -> ConsolePage:
        q = query
        stmt = search_statement(account_id, q)
        async with reading(self._engine) as conn:
            rows = (await conn.execute(stmt)).all()
        found = tuple(_message(r) for r in rows[: q.limit])
        more = len(rows) > q.limit
        return ConsolePage(found, found[-1].cursor if more and found else None)

    async def journey(self, account_id: int | None, pk: int) -> Journey | None:
        stmt = select(messages).where(_m.id == pk)
        if account_id is not None:
            stmt = stmt.where(_m.account_id == account_id)
        async with reading(self._engine) as conn:
            row = (await conn.execute(stmt)).first()
            if row is None:
                return None
            tried = (
                await conn.execute(
                    select(attempts).where(attempts.c.message_pk == pk).order_by(attempts.c.step_index)
                )
            ).all()
            refs = (
                await conn.execute(
                    select(channel_refs.c.step_index, channel_refs.c.ref, channel_refs.c.delivered)
                    .where(channel_refs.c.message_pk == pk)
                    .order_by(channel_refs.c.step_index, channel_refs.c.ref)
                )
            ).all()
            pushed = (
                await conn.execute(select(reports).where(reports.c.message_pk == pk).order_by(reports.c.id))
            ).all()
        by_step: dict[int, list[tuple[str, bool]]] = {}
        for ref in refs:
            by_step.setdefault(ref.step_index, []).append((ref.ref, bool(ref.delivered)))
        return Journey(
            message=_message(row),
            plan=codec.decode_plan(row.plan),
            phase=row.phase,
            step_index=row.step_index,
            tries=row.tries,
            step_deadline=from_ms(row.step_deadline),
            next_action_at=_ms(row.next_action_at),
            sent_at=_ms(row.sent_at),
            notify_url=row.notify_url,
            callback_data=row.callback_data,
            attempts=tuple(
                JourneyAttempt(
                    step_index=a.step_index,
                    channel=a.channel,
                    sender=a.sender,
                    to=a.to,
                    tries=a.tries,
                    status=_status(a.status_id),
                    error=_error(a.error_id),
                    sent_at=_ms(a.sent_at),
                    done_at=_ms(a.done_at),
                    message_count=a.message_count,
                    late_status=_status(a.late_status_id) if a.late_status_id is not None else None,
                    late_error=_error(a.late_error_id) if a.late_error_id is not None else None,
                    late_at=_ms(a.late_at),
                    refs=tuple(by_step.get(a.step_index, ())),
                )
                for a in tried
            ),
            reports=tuple(
                JourneyReport(
                    kind=r.kind,
                    state=r.state,
                    created_at=from_ms(r.created_at),
                    push_tries=r.push_tries,
                    next_push_at=_ms(r.next_push_at),
                    notify_url=r.notify_url,
                    body=r.body,
                )
                for r in pushed
            ),
        )

    async def overview(self, account_id: int | None, since: datetime, now: datetime) -> Overview:
        since_ms = to_ms(since)

        def own(stmt: Select[Any]) -> Select[Any]:
            return stmt.where(_m.account_id == account_id) if account_id is not None else stmt

        def own_done(stmt: Select[Any]) -> Select[Any]:
            # `account_id + 0`: not an index term, so that the window is read from ix_messages_done;
            # SQLite otherwise walked the account's whole history in ix_messages_account_created
            # (157 ms instead of 7 at 500,000 messages of one account: bench/console_search.py)
            return stmt.where(_m.account_id + 0 == account_id) if account_id is not None else stmt

        accepted_minute = (_m.created_at // 60_000).label("minute")
        done_minute = (_m.done_at // 60_000).label("minute")
        async with reading(self._engine) as conn:
            accepted = (
                await conn.execute(
                    own(select(accepted_minute, func.count()).where(_m.created_at >= since_ms)).group_by(
                        accepted_minute
                    )
                )
            ).all()
            finished = (
                await conn.execute(
                    own_done(select(done_minute, func.count()).where(_m.done_at >= since_ms)).group_by(
                        done_minute
                    )
                )
            ).all()
            latency = (
                await conn.execute(
                    own_done(select(_m.created_at, _m.done_at).where(_m.done_at >= since_ms))
                    .order_by(_m.done_at.desc())
                    .limit(OVERVIEW_ROWS)
                )
            ).all()
            tried = (
                await conn.execute(
                    own(
                        select(
                            attempts.c.message_pk,
                            attempts.c.step_index,
                            attempts.c.channel,
                            attempts.c.status_id,
                            attempts.c.late_status_id,
                            _m.phase,
                        )
                        .join(messages, _m.id == attempts.c.message_pk)
                        .where(_m.created_at >= since_ms)
                    )
                    .order_by(_m.created_at.desc())
                    .limit(OVERVIEW_ROWS)
                )
            ).all()
        counts: dict[int, list[int]] = {}
        for minute, n in accepted:
            counts.setdefault(int(minute), [0, 0])[0] = n
        for minute, n in finished:
            counts.setdefault(int(minute), [0, 0])[1] = n
        first, last = since_ms // 60_000, to_ms(now) // 60_000
        minutes = tuple(
            (m * 60_000, counts.get(m, [0, 0])[0], counts.get(m, [0, 0])[1]) for m in range(first, last + 1)
        )
        funnel, delivery = _funnel(tried)
        return Overview(
            since=since,
            minutes=minutes,
            funnel=funnel,
            delivery=delivery,
            latency_ms=tuple(sorted(done - created for created, done in latency)),
            sampled=len(latency) >= OVERVIEW_ROWS or len(tried) >= OVERVIEW_ROWS,
        )

    async def account_names(self) -> dict[int, str]:
        async with reading(self._engine) as conn:
            rows = (await conn.execute(select(accounts.c.id, accounts.c.username))).all()
        return {r.id: r.username for r in rows}

    async def scenarios(self, keys: Sequence[str]) -> dict[str, Scenario]:
        if not keys:
            return {}
        async with reading(self._engine) as conn:
            rows = (await conn.execute(select(scenarios).where(scenarios.c.key.in_(keys)))).all()
        return {r.key: scenario_of(r) for r in rows}


def _funnel(
    tried: Any,
) -> tuple[tuple[FunnelStep, ...], tuple[tuple[str, int, int], ...]]:
    """Per (step, channel): how the attempts ended; per channel: final attempts and deliveries."""
    last_step: dict[int, int] = {}
    for a in tried:
        last_step[a.message_pk] = max(last_step.get(a.message_pk, -1), a.step_index)
    steps: dict[tuple[int, str], list[int]] = {}  # attempts, delivered, failed over, failed, pending
    channels: dict[str, list[int]] = {}  # final, delivered
    for a in tried:
        status = _status(a.status_id)
        late = _status(a.late_status_id) if a.late_status_id is not None else None
        delivered = status.is_success or (late is not None and late.is_success)
        row = steps.setdefault((a.step_index, a.channel), [0, 0, 0, 0, 0])
        row[0] += 1
        if delivered:
            row[1] += 1
        elif status.group in (StatusGroup.ACCEPTED, StatusGroup.PENDING):
            row[4] += 1
        elif a.step_index < last_step[a.message_pk] or a.phase != "DONE":
            row[2] += 1
        else:
            row[3] += 1
        if status.is_final or delivered:
            per = channels.setdefault(a.channel, [0, 0])
            per[0] += 1
            per[1] += delivered
    funnel = tuple(FunnelStep(index, channel, *values) for (index, channel), values in sorted(steps.items()))
    return funnel, tuple((c, v[0], v[1]) for c, v in sorted(channels.items()))
