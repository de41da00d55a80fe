"""Success criteria (docs/api.md#success-criteria) through the dispatcher, the receipt loop and a real
store (SQLite and PostgreSQL), with in-memory channels and a fake clock; the logs read back what the
attempts recorded."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import msgspec
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from omnirelay.domain import failover
from omnirelay.domain.messages import Channel, Receipt, SuccessCriterion
from omnirelay.domain.statuses import (
    DELIVERED_TO_HANDSET,
    EC_ABSENT_SUBSCRIBER_SM,
    EC_NO_SESSION,
    NO_ERROR,
    UNDELIVERABLE_NOT_DELIVERED,
)
from omnirelay.ports import Api, FunnelRow, LogFilter, LogRow, NewMessage, ReportFilter
from omnirelay.services.dispatcher import Dispatcher
from omnirelay.services.receipts import ReceiptProcessor
from omnirelay.store.inbound import SqlInboundStore
from omnirelay.store.logs import SqlLogStore
from omnirelay.store.messages import SqlMessageStore
from omnirelay.store.tables import reports
from omnirelay.store.writer import Writer
from tests.contract.test_message_store import PLAN, new_message, query_plans
from tests.doubles import FakeClock, InMemoryChannel


class Counts:
    """A `Metrics` that keeps the receipts and the funnel counted (the rest is not looked at)."""

    def __init__(self) -> None:
        self.receipts: list[str] = []
        self.funnel_counts: Counter[tuple[str, int, str, str]] = Counter()

    def receipt(self, result: str) -> None:
        self.receipts.append(result)

    def funnel(self, scenario: str, step: int, channel: str, outcome: str) -> None:
        self.funnel_counts[(scenario, step, channel, outcome)] += 1

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return lambda *args: None


class World:
    def __init__(self, engine: AsyncEngine, writer: Writer) -> None:
        self.clock = FakeClock()
        self.store = SqlMessageStore(engine, writer)
        self.logs = SqlLogStore(engine)
        self.fb = InMemoryChannel(Channel.FACEBOOK)
        self.sms = InMemoryChannel(Channel.SMS)
        self.counts = Counts()
        self.dispatcher = Dispatcher(
            self.store,
            {Channel.FACEBOOK: self.fb, Channel.SMS: self.sms},
            self.clock,
            owner="t",
            metrics=self.counts,  # type: ignore[arg-type]
        )
        self.receipts = ReceiptProcessor(self.store, self.clock, metrics=self.counts)  # type: ignore[arg-type]

    def message(
        self,
        criterion: SuccessCriterion,
        message_id: str = "m1",
        *,
        user: str = "user-1",
        phone: str = "41793026727",
        scenario_key: str | None = None,
    ) -> NewMessage:
        plan = (replace(PLAN[0], criterion=criterion, to=user), replace(PLAN[1], to=phone))
        return msgspec.structs.replace(
            new_message(self.clock, message_id),
            plan=plan,
            state=failover.start(plan, self.clock.now()),
            scenario_key=scenario_key,
        )

    async def step(self) -> None:
        await self.dispatcher.run_once()
        await self.receipts.run_once()

    async def receipt(self, ref: str, *, seen: bool = False) -> None:
        channel = Channel.FACEBOOK if ref.startswith("facebook") else Channel.SMS
        await self.receipts.record(
            [Receipt(channel, ref, DELIVERED_TO_HANDSET, NO_ERROR, self.clock.now(), seen=seen)]
        )
        await self.step()

    async def reports(self) -> list[dict]:
        return [json.loads(b) for b in await self.store.take_reports(1, Api.OMNI, ReportFilter())]

    async def log(self) -> LogRow:
        (row,) = await self.logs.logs(1, Api.OMNI, LogFilter())
        return row


@pytest.fixture
def world(engine: AsyncEngine, writer: Writer) -> World:
    return World(engine, writer)


async def test_seen_waits_past_a_delivery_and_succeeds_on_the_read(world: World):
    await world.store.insert_messages([world.message(SuccessCriterion.SEEN)])
    await world.step()
    await world.receipt("facebook-1")  # delivered: progress only
    assert await world.reports() == []
    row = await world.log()
    assert row.status.group.name == "PENDING"
    (attempt,) = row.attempts
    assert attempt.criterion is SuccessCriterion.SEEN and attempt.delivered_at == world.clock.now()
    assert attempt.done_at is None and attempt.seen_at is None
    world.clock.advance(5)
    await world.receipt("facebook-1", seen=True)  # the read meets it
    (report,) = await world.reports()
    assert report["channel"] == "FACEBOOK" and report["status"]["name"] == "DELIVERED_TO_HANDSET"
    assert world.sms.sent == []
    (attempt,) = (await world.log()).attempts
    assert attempt.seen_at == world.clock.now() and attempt.done_at == world.clock.now()
    assert world.counts.receipts == ["progress", "applied"]


async def test_seen_missed_fails_over_to_sms_at_the_deadline(world: World):
    await world.store.insert_messages([world.message(SuccessCriterion.SEEN)])
    await world.step()
    await world.receipt("facebook-1")  # delivered, never read
    world.clock.advance(61)  # the Messenger step's validity (60 s)
    await world.step()
    await world.step()
    assert [o.channel for o in world.sms.sent] == [Channel.SMS]
    await world.receipt("sms-1")
    (report,) = await world.reports()
    assert report["channel"] == "SMS" and report["status"]["name"] == "DELIVERED_TO_HANDSET"
    fb, sms = (await world.log()).attempts
    assert fb.status.name == "EXPIRED_EXPIRED" and fb.delivered_at is not None and fb.seen_at is None
    assert sms.criterion is SuccessCriterion.DELIVERED and sms.status.name == "DELIVERED_TO_HANDSET"


async def test_a_read_meets_delivered(world: World):
    await world.store.insert_messages([world.message(SuccessCriterion.DELIVERED)])
    await world.step()
    await world.receipt("facebook-1", seen=True)
    (report,) = await world.reports()
    assert report["status"]["name"] == "DELIVERED_TO_HANDSET" and world.sms.sent == []
    (attempt,) = (await world.log()).attempts
    assert attempt.seen_at is not None


async def test_accepted_ends_at_acceptance_and_a_later_receipt_is_recorded_on_the_attempt(
    world: World, engine: AsyncEngine
):
    message = msgspec.structs.replace(
        world.message(SuccessCriterion.ACCEPTED), notify_url="http://127.0.0.1:9/r", intermediate_report=True
    )
    await world.store.insert_messages([message])
    await world.step()
    world.clock.advance(3)
    await world.receipt("facebook-1")
    assert world.sms.sent == []
    (attempt,) = (await world.log()).attempts
    assert attempt.status.name == "DELIVERED_TO_OPERATOR"
    assert attempt.late_status is DELIVERED_TO_HANDSET and attempt.late_at == world.clock.now()
    # the one report is the final one at acceptance: the delivery afterwards is no late success
    ((kind, body),) = await pushes(engine)
    assert (kind, body["channel"], body["status"]["name"]) == ("FINAL", "FACEBOOK", "DELIVERED_TO_OPERATOR")


async def test_a_late_read_after_failover_is_recorded_as_seen(world: World):
    await world.store.insert_messages([world.message(SuccessCriterion.SEEN)])
    await world.step()
    world.clock.advance(61)
    await world.step()
    await world.step()
    world.clock.advance(1)
    await world.receipt("facebook-1", seen=True)  # read after the message moved on to SMS
    fb, _sms = (await world.log()).attempts
    assert fb.status.name == "EXPIRED_EXPIRED"
    assert fb.late_status is DELIVERED_TO_HANDSET and fb.seen_at == world.clock.now()
    assert world.counts.receipts[-1] == "late"


async def test_a_read_watermark_after_failover_finds_the_expired_step(
    world: World, engine: AsyncEngine, writer: Writer
):
    """A Messenger read names no message: the steps it covers are found by recipient, also once
    they expired and the message failed over (through their own partial index), and no longer
    once their read is recorded."""
    inbound = SqlInboundStore(engine, writer)
    await world.store.insert_messages(
        [world.message(SuccessCriterion.SEEN), world.message(SuccessCriterion.SEEN, "m2", user="user-2")]
    )
    await world.step()
    await world.receipt("facebook-2")  # m2 delivered (progress), m1 heard of nothing
    world.clock.advance(61)  # both expire unread: SMS goes out for both
    await world.step()
    await world.step()
    until = world.clock.now()
    users = ["user-1", "user-2"]
    assert await inbound.waiting_refs("APP", users, until) == []
    assert sorted(await inbound.expired_refs("APP", users, until, read=True)) == ["facebook-1", "facebook-2"]
    # a delivery watermark covers only the step that heard of no delivery yet
    assert await inbound.expired_refs("APP", users, until, read=False) == ["facebook-1"]
    assert await inbound.expired_refs("OTHER", users, until, read=True) == []
    assert await inbound.expired_refs("APP", users, until - timedelta(seconds=62), read=True) == []
    if engine.dialect.name == "sqlite":
        async with query_plans(engine) as plans:
            await inbound.expired_refs("APP", users, until, read=True)
        assert plans
        for statement, plan in plans:
            assert "ix_attempts_unread_facebook" in plan, (statement, plan)
            assert "SCAN attempts" not in plan and "SCAN channel_refs" not in plan, (statement, plan)
    world.clock.advance(1)
    await world.receipt("facebook-1", seen=True)  # the late read, as the watermark's receipt
    assert await inbound.expired_refs("APP", users, world.clock.now(), read=True) == ["facebook-2"]


async def pushes(engine: AsyncEngine) -> list[tuple[str, dict]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(reports.c.kind, reports.c.body).where(reports.c.state == "PUSH").order_by(reports.c.id)
        )
        return [(r.kind, json.loads(r.body)) for r in rows]


@pytest.mark.parametrize("intermediate", [True, False])
async def test_a_late_delivery_after_failover_is_a_late_success_pushed_when_asked(
    world: World, engine: AsyncEngine, intermediate: bool
):
    """docs/api.md#late-outcomes: recorded on the attempt, pushed as an intermediate report when
    the message asked for them; the final report stays the flow's."""
    message = msgspec.structs.replace(
        world.message(SuccessCriterion.DELIVERED),
        notify_url="http://127.0.0.1:9/reports",
        intermediate_report=intermediate,
    )
    await world.store.insert_messages([message])
    await world.step()
    world.clock.advance(61)  # Messenger expires: SMS goes out
    await world.step()
    await world.step()
    await world.receipt("sms-1")  # the SMS is delivered: the final report
    world.clock.advance(2)
    await world.receipt("facebook-1")  # and then Messenger's delivery, late
    world.clock.advance(1)
    await world.receipt("facebook-1", seen=True)  # and its read: recorded, not pushed or counted again
    fb, sms = (await world.log()).attempts
    assert fb.status.name == "EXPIRED_EXPIRED" and fb.late_status is DELIVERED_TO_HANDSET
    assert sms.status.name == "DELIVERED_TO_HANDSET"
    kinds = [(kind, body["channel"], body["status"]["name"]) for kind, body in await pushes(engine)]
    expected = [
        ("INTERMEDIATE", "FACEBOOK", "EXPIRED_EXPIRED"),
        ("FINAL", "SMS", "DELIVERED_TO_HANDSET"),
        ("INTERMEDIATE", "FACEBOOK", "DELIVERED_TO_HANDSET"),
    ]
    assert kinds == (expected if intermediate else [expected[1]])
    assert world.counts.receipts[-2:] == ["late", "late"]
    assert fb.seen_at == world.clock.now()


async def test_the_funnel_from_stored_attempts_agrees_with_the_counters(world: World):
    """docs/api.md#analytics: sent, met, failed by reason and late success, per scenario and step."""
    s = "SCENARIO"
    await world.store.insert_messages([world.message(SuccessCriterion.DELIVERED, "met", scenario_key=s)])
    await world.step()
    await world.receipt("facebook-1")  # met on Messenger
    world.fb.script("user-2", (UNDELIVERABLE_NOT_DELIVERED, EC_NO_SESSION))
    await world.store.insert_messages(
        [world.message(SuccessCriterion.DELIVERED, "rejected", user="user-2", scenario_key=s)]
    )
    await world.step()  # refused by Messenger; the SMS goes out at once
    await world.receipt("sms-1")
    world.sms.script("41790000004", (UNDELIVERABLE_NOT_DELIVERED, EC_ABSENT_SUBSCRIBER_SM))
    await world.store.insert_messages(
        [world.message(SuccessCriterion.SEEN, "receipt", user="user-4", phone="41790000004", scenario_key=s)]
    )
    await world.step()
    await world.receipts.record(
        [
            Receipt(
                Channel.FACEBOOK,
                "facebook-2",
                UNDELIVERABLE_NOT_DELIVERED,
                EC_ABSENT_SUBSCRIBER_SM,
                world.clock.now(),
            )
        ]
    )
    await world.step()  # the failure receipt fails over
    await world.step()  # and the SMSC refuses the SMS: the flow ends failed
    await world.store.insert_messages([world.message(SuccessCriterion.DELIVERED, "expired", scenario_key=s)])
    await world.step()
    world.clock.advance(61)
    await world.step()
    await world.step()
    await world.receipt("sms-2")
    world.clock.advance(1)
    await world.receipt("facebook-3")  # late: a late success
    await world.store.insert_messages([world.message(SuccessCriterion.ACCEPTED, "accepted", scenario_key=s)])
    await world.step()
    world.clock.advance(1)
    await world.receipt("facebook-4")  # after a success: no late success
    await world.store.insert_messages([world.message(SuccessCriterion.DELIVERED, "other")])  # no scenario

    funnel = await world.logs.funnel(1, world.clock.now() - timedelta(hours=1), world.clock.now())
    assert funnel == [  # "other" has no attempt yet (not sent)
        FunnelRow(s, 0, "FACEBOOK", 4, 2, 1, 1, 1, 1),
        FunnelRow(s, 1, "SMS", 2, 2, 1, 0, 0, 0),
    ]
    counted = {(step, outcome): n for (_, step, _, outcome), n in world.counts.funnel_counts.items()}
    for row in funnel:
        if row.scenario_key is None:
            continue
        i = row.step_index
        assert (
            counted.get((i, "sent"), 0),
            counted.get((i, "met"), 0),
            counted.get((i, "failed_rejected"), 0),
            counted.get((i, "failed_receipt"), 0),
            counted.get((i, "failed_expired"), 0),
            counted.get((i, "late_success"), 0),
        ) == (
            row.sent,
            row.met,
            row.failed_rejected,
            row.failed_receipt,
            row.failed_expired,
            row.late_success,
        )
    # another account's period holds none of it; an empty period neither
    assert await world.logs.funnel(2, world.clock.now() - timedelta(hours=1), world.clock.now()) == []
    assert await world.logs.funnel(1, world.clock.now(), world.clock.now()) == []
