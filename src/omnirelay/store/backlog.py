"""What waits: counted when `/metrics` is scraped (messages by what they wait for, queued reports),
and the earliest time any worker has something due (`Gateway.until_idle`).

Every query reads indexes over the work in flight (`ix_messages_due`: messages not done have a
`next_action_at`; `ix_reports_push`: reports by state; the inbox's and the forwards' `next_try_at`),
not the whole history kept for the logs.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from omnirelay.domain.failover import Phase
from omnirelay.domain.times import from_ms, to_ms
from omnirelay.ports import Backlog, ReportState
from omnirelay.store.engine import reading
from omnirelay.store.tables import forwards, messages, receipts_inbox, reports


class SqlBacklog:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def backlog(self, now: datetime) -> Backlog:
        m, r = messages.c, reports.c
        now_ms = to_ms(now)
        due = (m.next_action_at <= now_ms).label("due")
        leased = m.lease_owner.is_not(None).label("leased")
        in_flight = (
            select(m.phase, due, leased, func.count())
            .where(m.next_action_at >= 0)  # a range on ix_messages_due: done messages have none
            .group_by(m.phase, due, leased)
        )
        queued = (
            select(r.state, func.count())
            .where(r.state.in_((ReportState.PULL.value, ReportState.PUSH.value)))
            .group_by(r.state)
        )
        counts = {"due": 0, "sending": 0, "scheduled": 0, "waiting": 0}
        async with reading(self._engine) as conn:
            for phase, is_due, is_leased, n in (await conn.execute(in_flight)).all():
                if is_due:
                    key = "due"
                elif is_leased:
                    key = "sending"
                elif phase == Phase.WAITING.value:
                    key = "waiting"
                else:
                    key = "scheduled"
                counts[key] += n
            states = {state: n for state, n in (await conn.execute(queued)).all()}
        return Backlog(
            due=counts["due"],
            sending=counts["sending"],
            scheduled=counts["scheduled"],
            waiting_receipt=counts["waiting"],
            reports_pull=states.get(ReportState.PULL.value, 0),
            reports_push=states.get(ReportState.PUSH.value, 0),
        )

    async def next_due_at(self) -> datetime | None:
        """When the earliest of the workers' due times falls (a message's next action, a receipt to
        match, a report to push, an inbound to forward); None when none of them has any. A claimed
        row's due time is its lease's end (store.claims), so what is under way is not due."""
        earliest = [
            select(func.min(messages.c.next_action_at)),
            select(func.min(receipts_inbox.c.next_try_at)),
            select(func.min(reports.c.next_push_at)).where(reports.c.state == ReportState.PUSH.value),
            select(func.min(forwards.c.next_try_at)),
        ]
        async with reading(self._engine) as conn:
            found = [(await conn.execute(q)).scalar() for q in earliest]
        due = [ms for ms in found if ms is not None]
        return from_ms(min(due)) if due else None
