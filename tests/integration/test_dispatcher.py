"""The dispatcher and receipt loop over a real store, with an in-memory channel and a fake clock."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from omnirelay.domain.failover import Phase
from omnirelay.domain.messages import AddressKind, Channel, Outbound, Receipt
from omnirelay.domain.prices import Price
from omnirelay.domain.statuses import (
    DELIVERED_TO_HANDSET,
    EC_ABSENT_SUBSCRIBER_SM,
    EC_NO_SESSION,
    NO_ERROR,
    UNDELIVERABLE_NOT_DELIVERED,
)
from omnirelay.ports import Accepted, Api, ReportFilter
from omnirelay.services.dispatcher import Dispatcher
from omnirelay.services.receipts import ReceiptProcessor
from omnirelay.store.messages import SqlMessageStore
from omnirelay.store.tables import messages
from omnirelay.store.writer import Writer
from tests.contract.test_message_store import claim_when_lease_ends, new_message
from tests.doubles import FakeClock, InMemoryChannel
from tests.waiting import until


class World:
    def __init__(self, store: SqlMessageStore, clock: FakeClock) -> None:
        self.store = store
        self.clock = clock
        self.fb = InMemoryChannel(Channel.FACEBOOK)
        self.sms = InMemoryChannel(Channel.SMS)
        self.dispatcher = Dispatcher(
            store, {Channel.FACEBOOK: self.fb, Channel.SMS: self.sms}, clock, owner="t"
        )
        self.receipts = ReceiptProcessor(store, clock)

    async def step(self) -> None:
        await self.dispatcher.run_once()
        await self.receipts.run_once()

    async def reports(self) -> list[dict]:
        return [json.loads(b) for b in await self.store.take_reports(1, Api.OMNI, ReportFilter())]


@pytest.fixture
def world(engine: AsyncEngine, writer: Writer) -> World:
    return World(SqlMessageStore(engine, writer), FakeClock())


async def test_delivered_on_first_step(world: World):
    await world.store.insert_messages([new_message(world.clock, "m1")])
    await world.step()
    assert [o.channel for o in world.fb.sent] == [Channel.FACEBOOK] and world.sms.sent == []
    await world.receipts.record(
        [Receipt(Channel.FACEBOOK, "facebook-1", DELIVERED_TO_HANDSET, NO_ERROR, world.clock.now())]
    )
    await world.step()
    (report,) = await world.reports()
    assert report["status"]["name"] == "DELIVERED_TO_HANDSET" and report["channel"] == "FACEBOOK"
    assert world.sms.sent == []


async def test_rejection_fails_over_to_sms_then_sms_failure_is_final(world: World):
    world.fb.script("user-1", (UNDELIVERABLE_NOT_DELIVERED, EC_NO_SESSION))
    await world.store.insert_messages([new_message(world.clock, "m1")])
    await world.step()  # Messenger rejects
    await world.step()  # SMS goes out in the next round, without waiting for time to pass
    assert [o.to for o in world.sms.sent] == ["41793026727"]
    assert await world.reports() == []
    await world.receipts.record(
        [
            Receipt(
                Channel.SMS, "sms-1", UNDELIVERABLE_NOT_DELIVERED, EC_ABSENT_SUBSCRIBER_SM, world.clock.now()
            )
        ]
    )
    await world.step()
    (report,) = await world.reports()
    assert report["channel"] == "SMS" and report["to"] == "41793026727"
    assert report["status"]["name"] == "UNDELIVERABLE_NOT_DELIVERED"
    assert report["error"]["name"] == "EC_ABSENT_SUBSCRIBER_SM"


async def test_each_outcome_is_one_info_line_with_the_channels_reason(
    world: World, caplog: pytest.LogCaptureFixture
):
    world.fb.script("user-1", (UNDELIVERABLE_NOT_DELIVERED, EC_NO_SESSION))
    world.sms.script("41793026727", "unavailable", "accept")
    await world.store.insert_messages([new_message(world.clock, "m1")])
    with caplog.at_level(logging.INFO, logger="omnirelay.services.dispatcher"):
        await world.step()  # Messenger rejects, and SMS is sent at once under the same claim
    lines = [r.getMessage() for r in caplog.records if r.name == "omnirelay.services.dispatcher"]
    assert lines == [
        "step 0 (FACEBOOK) failed (UNDELIVERABLE_NOT_DELIVERED: rejected: scripted rejection); failing over",
        "SMS: unavailable: scripted outage",
    ]
    assert all(getattr(r, "message_id", None) == "m1" for r in caplog.records)


async def test_transient_failure_is_retried_later(world: World):
    world.fb.script("user-1", "unavailable", "accept")
    await world.store.insert_messages([new_message(world.clock, "m1")])
    await world.step()
    assert len(world.fb.sent) == 1
    await world.step()
    assert len(world.fb.sent) == 1  # not yet: backing off
    world.clock.advance(2)
    await world.step()
    assert len(world.fb.sent) == 2 and world.sms.sent == []


async def test_expiry_fails_over_and_late_receipt_is_recorded_only(world: World):
    await world.store.insert_messages([new_message(world.clock, "m1")])
    await world.step()
    world.clock.advance(61)  # the Messenger step's validity (60 s) runs out without a receipt
    await world.step()
    await world.step()
    assert len(world.sms.sent) == 1
    # Messenger's delivery arrives late: recorded on its attempt, the flow goes on with SMS
    await world.receipts.record(
        [Receipt(Channel.FACEBOOK, "facebook-1", DELIVERED_TO_HANDSET, NO_ERROR, world.clock.now())]
    )
    await world.step()
    assert await world.reports() == []
    await world.receipts.record(
        [Receipt(Channel.SMS, "sms-1", DELIVERED_TO_HANDSET, NO_ERROR, world.clock.now())]
    )
    await world.step()
    (report,) = await world.reports()
    assert report["channel"] == "SMS" and report["status"]["name"] == "DELIVERED_TO_HANDSET"


async def test_many_messages_each_end_in_exactly_one_report(world: World):
    world.fb.script("user-1", (UNDELIVERABLE_NOT_DELIVERED, EC_NO_SESSION))
    await world.store.insert_messages([new_message(world.clock, f"m{i}") for i in range(120)])
    for _ in range(4):
        await world.step()
    refs = [f"sms-{i + 1}" for i in range(len(world.sms.sent))]
    await world.receipts.record(
        [Receipt(Channel.SMS, r, DELIVERED_TO_HANDSET, NO_ERROR, world.clock.now()) for r in refs]
    )
    await world.step()
    reports = await world.reports() + await world.reports() + await world.reports()
    assert sorted(r["messageId"] for r in reports) == sorted(f"m{i}" for i in range(120))


async def test_a_send_that_hangs_ends_before_its_lease_and_is_retried(world: World):
    import asyncio

    from omnirelay.services.dispatcher import Dispatcher

    world.fb.gate = asyncio.Event()  # Messenger never answers
    dispatcher = Dispatcher(
        world.store, {Channel.FACEBOOK: world.fb, Channel.SMS: world.sms}, world.clock, owner="t", lease_s=0.4
    )
    await world.store.insert_messages([new_message(world.clock, "m1")])
    async with asyncio.timeout(5):
        await dispatcher.run_once()  # returns: the send was given up inside the lease
    assert await world.store.claim_due(world.clock.now(), "other", 30, 10) == []  # not due: backing off
    world.clock.advance(2)
    (again,) = await world.store.claim_due(world.clock.now(), "other", 30, 10)
    assert again.state.tries == 1 and again.state.step_index == 0


async def test_messages_expiring_together_all_fail_over_in_the_rounds_that_claim_them(
    engine: AsyncEngine, writer: Writer
):
    """docs/api.md#failover (next step within 1 s of expiry): 250 Messenger steps expire at the same instant.
    Each round claims a batch, records its expiries and sends their SMS under the same claim; no
    batch waits for a second claim behind the others."""
    clock = FakeClock()
    store = SqlMessageStore(engine, writer)
    fb, sms = InMemoryChannel(Channel.FACEBOOK), InMemoryChannel(Channel.SMS)
    dispatcher = Dispatcher(store, {Channel.FACEBOOK: fb, Channel.SMS: sms}, clock, owner="t", batch=100)
    await store.insert_messages([new_message(clock, f"m{i}") for i in range(250)])
    while await dispatcher.run_once():
        pass
    assert len(fb.sent) == 250 and sms.sent == []
    clock.advance(61)  # every Messenger step's validity (60 s) ran out at once, no receipt
    for round_, expected in enumerate((100, 200, 250), start=1):
        assert await dispatcher.run_once() == expected - (round_ - 1) * 100
        assert len(sms.sent) == expected  # this round's whole claim is on SMS, not a part of it
    assert sorted(o.message_id for o in sms.sent) == sorted(f"m{i}" for i in range(250))
    assert await dispatcher.run_once() == 0  # nothing left due: each SMS step waits for its receipt
    for message_id in ("m0", "m249"):
        record = await store.record_by_message_id(1, message_id)
        assert record is not None and record.state.step_index == 1
        assert record.state.phase is Phase.WAITING and record.state.tries == 1


async def test_a_failover_keeps_its_claim_while_the_next_step_is_sent(world: World):
    """The failover is committed before the SMS is sent, under the same lease: another node does
    not claim the message meanwhile; if this node dies mid-send, it is due again when the lease
    runs out."""
    import asyncio

    class HangingSms:
        started = asyncio.Event()

        async def send(self, outbound: Outbound) -> Accepted:
            self.started.set()
            await asyncio.Event().wait()  # the SMSC never answers
            raise AssertionError("unreachable")

    sms = HangingSms()
    world.fb.script("user-1", (UNDELIVERABLE_NOT_DELIVERED, EC_NO_SESSION))
    dispatcher = Dispatcher(
        world.store, {Channel.FACEBOOK: world.fb, Channel.SMS: sms}, world.clock, owner="t", lease_s=2.0
    )
    await world.store.insert_messages([new_message(world.clock, "m1")])
    task = asyncio.create_task(dispatcher.run_once())
    await asyncio.wait_for(sms.started.wait(), 5)
    record = await world.store.record_by_message_id(1, "m1")
    assert record is not None and record.state.step_index == 1  # the rejection was committed first
    assert record.state.phase is Phase.READY
    assert await world.store.claim_due(world.clock.now(), "other", 30, 10) == []  # still ours
    task.cancel()  # this node dies while the SMS send is under way
    with contextlib.suppress(asyncio.CancelledError):
        await task
    world.clock.advance(2)  # its lease (2 s, in the database's time) runs out
    (again,) = await claim_when_lease_ends(world.store, world.clock, "other")
    assert again.message_id == "m1" and again.state.step_index == 1 and again.state.tries == 0


async def leased(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        q = select(func.count()).select_from(messages).where(messages.c.lease_owner.is_not(None))
        return int((await conn.execute(q)).scalar_one())


async def test_a_claim_takes_only_what_can_start_now(world: World, engine: AsyncEngine):
    """Slots are taken before the claim: with 2 slots and a batch of 4, 2 messages are leased while
    their sends hang, not 4 (whose leases would run out while 2 of them waited for a slot)."""
    world.fb.gate = asyncio.Event()
    dispatcher = Dispatcher(
        world.store, {Channel.FACEBOOK: world.fb}, world.clock, owner="t", lease_s=5, batch=4, concurrency=2
    )
    await world.store.insert_messages([new_message(world.clock, f"m{i}") for i in range(8)])
    runner = asyncio.create_task(dispatcher.run())
    try:
        await until(lambda: len(world.fb.started) == 2)
        assert await dispatcher.run_once(wait=False) == 0  # no slot free: nothing claimed
        assert await leased(engine) == 2
        world.fb.gate.set()
        await until(lambda: len(world.fb.sent) == 8)
        await dispatcher.stop(grace_s=5)
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
    assert Counter(o.message_id for o in world.fb.sent) == {f"m{i}": 1 for i in range(8)}


async def test_sends_under_a_short_lease_go_out_once_each(world: World):
    """The reproduction of claiming before capacity: lease 1 s, batch 4, concurrency 2, sends of
    0.3 s each. Every message is sent once; none is claimed again while it waits or sends."""

    class SlowChannel(InMemoryChannel):
        async def send(self, outbound: Outbound) -> Accepted:
            await asyncio.sleep(0.3)  # the peer's answer time, not a synchronisation
            return await super().send(outbound)

    fb = SlowChannel(Channel.FACEBOOK)
    dispatcher = Dispatcher(
        world.store, {Channel.FACEBOOK: fb}, world.clock, owner="t", lease_s=1.0, batch=4, concurrency=2
    )
    await world.store.insert_messages([new_message(world.clock, f"m{i}") for i in range(8)])
    runner = asyncio.create_task(dispatcher.run())
    try:
        await until(lambda: len(fb.sent) == 8)
        await dispatcher.stop(grace_s=5)
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
    assert Counter(o.message_id for o in fb.sent) == {f"m{i}": 1 for i in range(8)}
    for i in range(8):
        record = await world.store.record_by_message_id(1, f"m{i}")
        assert record is not None and record.state.phase is Phase.WAITING


async def test_stop_lets_the_sends_under_way_write_their_outcomes(world: World):
    world.fb.gate = asyncio.Event()
    dispatcher = Dispatcher(world.store, {Channel.FACEBOOK: world.fb}, world.clock, owner="t", concurrency=2)
    await world.store.insert_messages([new_message(world.clock, f"m{i}") for i in range(3)])
    runner = asyncio.create_task(dispatcher.run())
    await until(lambda: len(world.fb.started) == 2)
    stopping = asyncio.create_task(dispatcher.stop(grace_s=10))
    await until(runner.done)  # claims stop at once, before the sends end
    assert not stopping.done()
    world.fb.gate.set()
    await stopping
    states = {}
    for i in range(3):
        record = await world.store.record_by_message_id(1, f"m{i}")
        assert record is not None
        states[record.message_id] = record.state.phase
    assert sorted(states.values()) == [Phase.READY, Phase.WAITING, Phase.WAITING]
    assert len(world.fb.sent) == 2 and await dispatcher.run_once() == 0  # stopped: claims nothing


class FailingPrices:
    """A price list that fails: what is done after a send then fails every time (a poison)."""

    def for_destination(self, channel: str, to: str, to_kind: AddressKind = AddressKind.PHONE) -> Price:
        raise RuntimeError("price list broken")


async def test_a_message_that_keeps_failing_after_its_send_is_parked(world: World, engine: AsyncEngine):
    """The send is accepted with a final status, and writing its outcome fails every time. The
    message is claimed again as each lease runs out, sent `max_claims` times at most, then parked
    with a final report, instead of being sent every lease until its validity ends."""
    fb = InMemoryChannel(Channel.FACEBOOK, accepted_status=DELIVERED_TO_HANDSET)
    dispatcher = Dispatcher(
        world.store,
        {Channel.FACEBOOK: fb},
        world.clock,
        owner="t",
        lease_s=0.4,
        max_claims=3,
        prices=FailingPrices(),
    )
    await world.store.insert_messages([new_message(world.clock, "m1")])
    runner = asyncio.create_task(dispatcher.run())
    try:

        async def parked() -> bool:
            record = await world.store.record_by_message_id(1, "m1")
            return record is not None and record.state.phase is Phase.DONE

        async def claim_again() -> bool:
            world.clock.advance(0.4)  # the schedule follows the fake clock, the lease the database's
            return await parked()

        await until(claim_again, within_s=20)
    finally:
        await dispatcher.stop(grace_s=5)
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
    assert len(fb.sent) == 3
    (report,) = await world.reports()
    assert report["status"]["name"] == "REJECTED_SYSTEM_ERROR"
    assert report["error"]["name"] == "EC_PROCESSING_FAILED"


async def test_a_receipt_for_a_newer_send_does_not_match_an_earlier_send_of_its_ref(world: World):
    """SMSC ids repeat: a receipt whose adapter knows when its send was made (`sent_after`) waits
    for that send to be recorded instead of delivering the earlier message that got the same ref."""
    world.fb.script("user-1", (UNDELIVERABLE_NOT_DELIVERED, EC_NO_SESSION))
    await world.store.insert_messages([new_message(world.clock, "m1")])
    await world.step()  # Messenger rejects, the SMS goes out as sms-1 and waits for its receipt
    assert world.sms.refs_for("41793026727") == ["sms-1"]
    world.clock.advance(1)
    world.sms.restart()  # the SMSC counts from 1 again
    receipt = Receipt(
        Channel.SMS, "sms-1", DELIVERED_TO_HANDSET, NO_ERROR, world.clock.now(), sent_after=world.clock.now()
    )
    await world.receipts.record([receipt])  # it came before its submit was recorded
    await world.receipts.run_once()
    assert await world.reports() == []  # m1 is not delivered by it
    await world.store.insert_messages([new_message(world.clock, "m2")])
    await world.dispatcher.run_once()  # m2's SMS gets sms-1 again
    assert len(world.sms.sent) == 2
    world.clock.advance(1)
    await world.receipts.run_once()
    (report,) = await world.reports()
    assert report["messageId"] == "m2" and report["status"]["name"] == "DELIVERED_TO_HANDSET"
    m1 = await world.store.record_by_message_id(1, "m1")
    assert m1 is not None and m1.state.phase is Phase.WAITING


async def test_an_accepted_send_that_cannot_be_recorded_is_not_sent_again(engine: AsyncEngine, world: World):
    """The channel took the SMS but its ref cannot be written: the send is recorded without it and
    waits for its deadline, rather than being sent again at every lease."""
    async with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            await conn.exec_driver_sql(
                "CREATE TRIGGER refuse_ref BEFORE INSERT ON channel_refs WHEN NEW.ref = 'sms-1' "
                "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
            )
        else:
            await conn.exec_driver_sql(
                "CREATE FUNCTION refuse_ref() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.ref = 'sms-1' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$"
            )
            await conn.exec_driver_sql(
                "CREATE TRIGGER refuse_ref BEFORE INSERT ON channel_refs "
                "FOR EACH ROW EXECUTE FUNCTION refuse_ref()"
            )
    try:
        world.fb.script("user-1", (UNDELIVERABLE_NOT_DELIVERED, EC_NO_SESSION))
        await world.store.insert_messages([new_message(world.clock, "m1")])
        await world.step()
        assert len(world.sms.sent) == 1
        m1 = await world.store.record_by_message_id(1, "m1")
        assert m1 is not None and m1.state.phase is Phase.WAITING
        world.clock.advance(61)  # past the lease and the SMS step's validity
        await world.step()
        await world.step()
        assert len(world.sms.sent) == 1  # never sent again
        (report,) = await world.reports()
        assert report["channel"] == "SMS" and report["status"]["name"] == "EXPIRED_EXPIRED"
    finally:  # a PostgreSQL test database is reused (truncated, triggers kept): the next test's sms-1
        async with engine.begin() as conn:
            await conn.exec_driver_sql(
                "DROP TRIGGER refuse_ref" + ("" if engine.dialect.name == "sqlite" else " ON channel_refs")
            )
            if engine.dialect.name != "sqlite":
                await conn.exec_driver_sql("DROP FUNCTION refuse_ref()")
