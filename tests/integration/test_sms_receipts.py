"""SMS receipts from the SMSC simulator, through the real SMPP sender, into the real store and
receipt loop (dispatcher and receipt rounds stepped by the test)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from omnirelay.channels.sms.config import SmppConnectorConfig
from omnirelay.channels.sms.sender import SmppSender
from omnirelay.domain import failover
from omnirelay.domain.failover import Phase, PlannedStep
from omnirelay.domain.messages import AddressKind, Channel, SmsContent
from omnirelay.domain.statuses import NO_ERROR, PENDING_ACCEPTED
from omnirelay.ports import Api, NewMessage, ReportFilter
from omnirelay.sandbox.smsc import SmscSimulator
from omnirelay.services.dispatcher import Dispatcher
from omnirelay.services.receipts import ReceiptProcessor
from omnirelay.store.messages import SqlMessageStore
from omnirelay.store.tables import attempts
from omnirelay.store.writer import Writer
from tests.doubles import FakeClock

LONG = "Привет, мир! " * 14  # 3 UCS-2 parts


def sms_message(clock: FakeClock, message_id: str, to: str, text: str) -> NewMessage:
    plan = (PlannedStep(Channel.SMS, "InfoSMS", to, AddressKind.PHONE, 600, sms=SmsContent(text)),)
    return NewMessage(
        account_id=1,
        message_id=message_id,
        bulk_id=None,
        api=Api.OMNI,
        to={"phoneNumber": to},
        plan=plan,
        state=failover.start(plan, clock.now()),
        status=PENDING_ACCEPTED,
        error=NO_ERROR,
        created_at=clock.now(),
    )


class SmsWorld:
    def __init__(self, store: SqlMessageStore, smsc: SmscSimulator) -> None:
        self.store = store
        self.smsc = smsc
        self.clock = FakeClock()
        self.receipts = ReceiptProcessor(store, self.clock)
        config = SmppConnectorConfig(
            name="main", host="127.0.0.1", port=smsc.port, system_id="gw", password="secret"
        )
        self.sender = SmppSender([config], [], self.receipts, self.clock)
        self.dispatcher = Dispatcher(store, {Channel.SMS: self.sender}, self.clock, owner="t")


@pytest.fixture
async def sms_world(engine: AsyncEngine, writer: Writer) -> AsyncIterator[SmsWorld]:
    async with SmscSimulator(users={"gw": "secret"}, receipt_delay_s=0.0) as smsc:
        world = SmsWorld(SqlMessageStore(engine, writer), smsc)
        await world.sender.start()
        assert await world.sender.wait_bound(5)
        yield world
        await world.sender.stop()


async def test_parts_receipts_in_one_batch_end_the_step_without_a_late_receipt(
    engine: AsyncEngine, sms_world: SmsWorld, caplog: pytest.LogCaptureFixture
):
    w = sms_world
    w.smsc.paused = True  # hold the receipts, to hand them over together
    await w.store.insert_messages(
        [sms_message(w.clock, "m1", "41793026727", LONG), sms_message(w.clock, "m2", "4915112345678", LONG)]
    )
    await w.dispatcher.run_once()
    assert len(w.smsc.submits) == 6
    w.smsc.paused = False
    await w.smsc.wait_for(lambda: len(w.smsc.receipt_acks) == 6)  # all six in the inbox
    with caplog.at_level(logging.INFO, logger="omnirelay.services.receipts"):
        while await w.receipts.run_once():
            pass
    reports = [json.loads(b) for b in await w.store.take_reports(1, Api.OMNI, ReportFilter())]
    assert sorted((r["messageId"], r["status"]["name"]) for r in reports) == [
        ("m1", "DELIVERED_TO_HANDSET"),
        ("m2", "DELIVERED_TO_HANDSET"),
    ]
    assert not [r for r in caplog.records if "late receipt" in r.getMessage()]
    async with engine.connect() as conn:
        late = (await conn.execute(select(attempts.c.late_status_id))).scalars().all()
    assert late == [None, None]
    for m in ("m1", "m2"):
        record = await w.store.record_by_message_id(1, m)
        assert record is not None and record.state.phase is Phase.DONE
