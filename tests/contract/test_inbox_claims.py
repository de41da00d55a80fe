"""The receipt inbox is claimed like the other outboxes (docs/architecture.md#claims-and-leases):
each receipt is worked on by one node at a time, a claim that ran out is taken over, and the late
settlement of a claim taken over changes nothing. SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from omnirelay.domain.messages import Channel, Receipt
from omnirelay.domain.statuses import DELIVERED_TO_HANDSET, NO_ERROR
from omnirelay.ports import ReceiptOutcome
from omnirelay.store.messages import INBOX_LEASE_S, SqlMessageStore
from omnirelay.store.tables import receipts_inbox
from omnirelay.store.writer import Writer
from tests.doubles import FakeClock


async def _inbox(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(receipts_inbox))).scalar_one())


async def test_each_receipt_is_claimed_by_one_node_and_a_late_settlement_is_refused(
    engine: AsyncEngine, writer: Writer, clock: FakeClock
) -> None:
    node_a, node_b = SqlMessageStore(engine, writer), SqlMessageStore(engine, writer)
    await node_a.record_receipts(
        [Receipt(Channel.SMS, f"smsc1/{i}", DELIVERED_TO_HANDSET, NO_ERROR, clock.now()) for i in range(4)],
        clock.now(),
    )
    first = await node_a.due_receipts(clock.now(), 3)
    rest = await node_b.due_receipts(clock.now(), 10)
    assert len(first) == 3 and len(rest) == 1  # disjoint: none is worked on by both
    assert {r.id for r in first}.isdisjoint(r.id for r in rest)
    assert await node_b.due_receipts(clock.now(), 10) == []
    assert await node_b.settle_receipts([ReceiptOutcome(rest[0].id)]) == [True]
    # node a stalls past its lease (the database's clock): node b takes its receipts over
    clock.advance(INBOX_LEASE_S + 1)
    async with engine.begin() as conn:
        await conn.execute(update(receipts_inbox).values(lease_until=receipts_inbox.c.lease_until - 60_000))
    taken = await node_b.due_receipts(clock.now(), 10)
    assert sorted(r.id for r in taken) == sorted(r.id for r in first)
    assert await node_a.settle_receipts([ReceiptOutcome(r.id) for r in first]) == [False] * 3
    assert await _inbox(engine) == 3  # a's late settlement deleted nothing
    assert await node_b.settle_receipts([ReceiptOutcome(r.id) for r in taken]) == [True] * 3
    assert await _inbox(engine) == 0
