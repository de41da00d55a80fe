"""The MessageStore contract, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from omnirelay.domain import failover
from omnirelay.domain.failover import Delivered, PlannedStep, SentOk, StepFailed
from omnirelay.domain.messages import AddressKind, Channel, FacebookContent, FacebookKind, Receipt, SmsContent
from omnirelay.domain.statuses import (
    DELIVERED_TO_HANDSET,
    EC_UNKNOWN_USER,
    NO_ERROR,
    PENDING_ACCEPTED,
    PENDING_ENROUTE,
    PENDING_WAITING_DELIVERY,
    UNDELIVERABLE_NOT_DELIVERED,
)
from omnirelay.ports import Accepted, Api, MessageRecord, NewMessage, ReceiptOutcome, ReportFilter
from omnirelay.services.transitions import transition_for
from omnirelay.store.engine import make_engine
from omnirelay.store.messages import SqlMessageStore
from omnirelay.store.migrate import migrate
from omnirelay.store.tables import attempts, channel_refs, metadata
from omnirelay.store.writer import Writer
from tests.doubles import FakeClock

PLAN = (
    PlannedStep(
        Channel.FACEBOOK,
        "APP",
        "user-1",
        AddressKind.USER_KEY,
        60,
        facebook=FacebookContent(FacebookKind.TEXT, text="hi"),
    ),
    PlannedStep(Channel.SMS, "InfoSMS", "41793026727", AddressKind.PHONE, 60, sms=SmsContent("hi")),
)


def new_message(
    clock: FakeClock, message_id: str, account_id: int = 1, *, client: bool = False
) -> NewMessage:
    return NewMessage(
        account_id=account_id,
        message_id=message_id,
        bulk_id=None,
        api=Api.OMNI,
        to={"phoneNumber": "41793026727"},
        plan=PLAN,
        state=failover.start(PLAN, clock.now()),
        status=PENDING_ACCEPTED,
        error=NO_ERROR,
        created_at=clock.now(),
        client_message_id=client,
    )


async def test_insert_detects_client_duplicates_within_and_across_batches(
    store: SqlMessageStore, clock: FakeClock
):
    assert await store.insert_messages(
        [new_message(clock, "a", client=True), new_message(clock, "a", client=True)]
    ) == [True, False]
    assert await store.insert_messages(
        [new_message(clock, "a", client=True), new_message(clock, "b", client=True)]
    ) == [False, True]
    # the same id in another account is not a duplicate (tenant isolation)
    assert await store.insert_messages([new_message(clock, "a", account_id=2, client=True)]) == [True]


async def test_concurrent_inserts_share_commits_and_all_land(store: SqlMessageStore, clock: FakeClock):
    results = await asyncio.gather(
        *(store.insert_messages([new_message(clock, f"m{i}")]) for i in range(300))
    )
    assert all(r == [True] for r in results)
    claimed = await store.claim_due(clock.now(), "node", 30, 1000)
    assert sorted(r.message_id for r in claimed) == sorted(f"m{i}" for i in range(300))


LEASE_S = 0.3  # leases run in the database's clock: short ones, so that tests can outlive them


async def claim_when_lease_ends(
    store: SqlMessageStore, clock: FakeClock, owner: str, *, within_s: float = 5.0
) -> list[MessageRecord]:
    """Claim as `owner` once a lease taken before has run out in the database's time."""
    give_up = asyncio.get_running_loop().time() + within_s
    while asyncio.get_running_loop().time() < give_up:
        claimed = await store.claim_due(clock.now(), owner, LEASE_S, 10)
        if claimed:
            return claimed
        await asyncio.sleep(0.02)  # polling for a condition, under a deadline
    return []


async def test_a_claim_is_a_lease_that_expires(store: SqlMessageStore, clock: FakeClock):
    await store.insert_messages([new_message(clock, "m1")])
    first = await store.claim_due(clock.now(), "node-a", LEASE_S, 10)
    assert [r.message_id for r in first] == ["m1"]
    assert await store.claim_due(clock.now(), "node-b", LEASE_S, 10) == []
    clock.advance(LEASE_S)  # node-a died: its lease runs out
    again = await claim_when_lease_ends(store, clock, "node-b")
    assert [r.message_id for r in again] == ["m1"]
    assert again[0].version == first[0].version + 1  # a fresh fencing token
    assert again[0].claims == 2
    # node-a's late write is refused: the lease is node-b's now
    t = transition_for(
        first[0],
        SentOk(PENDING_WAITING_DELIVERY),
        clock.now(),
        accepted=Accepted(("mid-1",), PENDING_WAITING_DELIVERY),
    )
    assert await store.apply([t], "node-a") == [False]
    assert await store.apply(
        [
            transition_for(
                again[0],
                SentOk(PENDING_WAITING_DELIVERY),
                clock.now(),
                accepted=Accepted(("mid-2",), PENDING_WAITING_DELIVERY),
            )
        ],
        "node-b",
    ) == [True]


async def test_concurrent_claimers_never_get_the_same_message(store: SqlMessageStore, clock: FakeClock):
    await store.insert_messages([new_message(clock, f"m{i}") for i in range(200)])
    batches = await asyncio.gather(*(store.claim_due(clock.now(), f"node-{i}", 30, 50) for i in range(6)))
    ids = [r.message_id for batch in batches for r in batch]
    assert len(ids) == len(set(ids)) == 200


async def test_receipt_before_send_is_recorded_matches_later(store: SqlMessageStore, clock: FakeClock):
    await store.insert_messages([new_message(clock, "m1")])
    (rec,) = await store.claim_due(clock.now(), "n", 30, 10)
    receipt = Receipt(Channel.FACEBOOK, "mid-1", DELIVERED_TO_HANDSET, NO_ERROR, clock.now())
    await store.record_receipts([receipt], clock.now())
    (early,) = await store.due_receipts(clock.now(), 10)
    assert early.record is None  # the send is not recorded yet
    await store.settle_receipts([ReceiptOutcome(early.id, retry_at=clock.now())])
    accepted = Accepted(("mid-1",), PENDING_WAITING_DELIVERY)
    assert await store.apply(
        [transition_for(rec, SentOk(accepted.status), clock.now(), accepted=accepted)], "n"
    ) == [True]
    (matched,) = await store.due_receipts(clock.now(), 10)
    assert matched.record is not None and matched.step_index == 0
    assert matched.record.state.phase is failover.Phase.WAITING
    t = transition_for(matched.record, Delivered(DELIVERED_TO_HANDSET), clock.now())
    assert await store.settle_receipts([ReceiptOutcome(matched.id, transition=t)]) == [True]
    assert await store.due_receipts(clock.now(), 10) == []
    (report,) = await store.take_reports(1, Api.OMNI, ReportFilter())
    body = json.loads(report)
    assert body["messageId"] == "m1" and body["status"]["name"] == "DELIVERED_TO_HANDSET"
    assert body["channel"] == "FACEBOOK"


async def test_a_stale_transition_is_refused(store: SqlMessageStore, clock: FakeClock):
    await store.insert_messages([new_message(clock, "m1")])
    (rec,) = await store.claim_due(clock.now(), "n", 30, 10)
    reject = transition_for(rec, StepFailed(UNDELIVERABLE_NOT_DELIVERED, EC_UNKNOWN_USER), clock.now())
    assert await store.apply([reject], "n") == [True]
    assert await store.apply([reject], None) == [False]  # same version again: refused


async def test_guards_hold_within_one_batch_of_transitions(store: SqlMessageStore, clock: FakeClock):
    """Transitions applied together are guarded as if applied one after another."""
    await store.insert_messages([new_message(clock, f"m{i}") for i in range(3)])
    r0, r1, r2 = sorted(await store.claim_due(clock.now(), "n", 30, 10), key=lambda r: r.message_id)
    sent = Accepted(("mid-0",), PENDING_WAITING_DELIVERY)
    reject = StepFailed(UNDELIVERABLE_NOT_DELIVERED, EC_UNKNOWN_USER)
    batch = [
        transition_for(r0, SentOk(sent.status), clock.now(), accepted=sent),
        transition_for(r0, reject, clock.now()),  # same message, same version: the first one won
        transition_for(r1, reject, clock.now()),
        transition_for(r2, reject, clock.now()),
    ]
    results = await asyncio.gather(store.apply(batch[:3], "n"), store.apply(batch[3:], "other-node"))
    assert results == [[True, False, True], [False]]  # r2's lease is n's, not other-node's
    after = {m: await store.record_by_message_id(1, m) for m in ("m0", "m1", "m2")}
    assert after["m0"] is not None and after["m0"].state.phase is failover.Phase.WAITING
    assert after["m0"].version == r0.version + 1 and after["m0"].message_count == sent.message_count
    assert after["m1"] is not None and after["m1"].state.step_index == 1
    assert after["m2"] is not None and after["m2"].version == r2.version


async def test_receipts_settled_together_each_get_their_own_outcome(
    engine: AsyncEngine, store: SqlMessageStore, clock: FakeClock
):
    """One batch of receipts: one applied, one whose message moved on meanwhile (stale, looked at
    again), one late (recorded on its attempt only), one unmatched (retried later)."""
    await store.insert_messages([new_message(clock, f"m{i}") for i in range(3)])
    claimed = sorted(await store.claim_due(clock.now(), "n", 30, 10), key=lambda r: r.message_id)
    for i, rec in enumerate(claimed):
        sent = Accepted((f"mid-{i}",), PENDING_WAITING_DELIVERY)
        assert await store.apply([transition_for(rec, SentOk(sent.status), clock.now(), accepted=sent)], "n")
    # m2's Messenger step fails meanwhile: it moves on to SMS, so its receipt below is late
    waiting = {m: await store.record_by_message_id(1, m) for m in ("m0", "m1", "m2")}
    m2 = waiting["m2"]
    assert m2 is not None
    failed = transition_for(m2, StepFailed(UNDELIVERABLE_NOT_DELIVERED, EC_UNKNOWN_USER), clock.now())
    assert await store.apply([failed], None) == [True]
    refs = ("mid-0", "mid-1", "mid-2", "mid-unknown")
    await store.record_receipts(
        [Receipt(Channel.FACEBOOK, r, DELIVERED_TO_HANDSET, NO_ERROR, clock.now()) for r in refs], clock.now()
    )
    due = {d.receipt.ref: d for d in await store.due_receipts(clock.now(), 10)}
    m0, m1 = waiting["m0"], waiting["m1"]
    assert m0 is not None and m1 is not None
    stale_m1 = msgspec.structs.replace(m1, version=m1.version - 1)  # decided on an older state of m1
    outcomes = [
        ReceiptOutcome(
            due["mid-0"].id,
            transition=transition_for(m0, Delivered(DELIVERED_TO_HANDSET), clock.now()),
            owner=(m0.pk, 0),
        ),
        ReceiptOutcome(
            due["mid-1"].id,
            transition=transition_for(stale_m1, Delivered(DELIVERED_TO_HANDSET), clock.now()),
            owner=(m1.pk, 0),
        ),
        ReceiptOutcome(due["mid-2"].id, late=True, owner=(m2.pk, 0)),
        ReceiptOutcome(due["mid-unknown"].id, retry_at=clock.now() + timedelta(seconds=5)),
    ]
    assert await store.settle_receipts(outcomes) == [True, False, True, True]
    assert [d.receipt.ref for d in await store.due_receipts(clock.now(), 10)] == ["mid-1"]  # again, now
    clock.advance(5)
    # mid-1 was claimed just above and not settled: its claim holds it until its lease runs out
    assert [d.receipt.ref for d in await store.due_receipts(clock.now(), 10)] == ["mid-unknown"]
    (report,) = await store.take_reports(1, Api.OMNI, ReportFilter())
    assert json.loads(report)["messageId"] == "m0"
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(attempts.c.message_pk, attempts.c.late_status_id, channel_refs.c.delivered)
                .join(channel_refs, channel_refs.c.message_pk == attempts.c.message_pk)
                .order_by(attempts.c.message_pk)
            )
        ).all()
    assert [(r.late_status_id, r.delivered) for r in rows] == [
        (None, True),  # m0: delivered
        (None, False),  # m1: its receipt waits to be looked at again
        (DELIVERED_TO_HANDSET.id, True),  # m2: the late delivery is recorded on its attempt
    ]


async def test_a_clock_that_runs_ahead_does_not_take_a_live_lease(store: SqlMessageStore):
    """Lease expiry is the database's time: a node whose clock is an hour ahead of the database's
    sees the message due by its schedule, and still cannot claim it while node-a's lease lives."""
    clock = FakeClock(datetime.now(UTC))  # node-a's clock agrees with the database's
    await store.insert_messages([new_message(clock, "m1")])
    assert len(await store.claim_due(clock.now(), "node-a", 30, 10)) == 1
    ahead = clock.now() + timedelta(hours=1)
    assert await store.claim_due(ahead, "node-b", 30, 10) == []


async def test_a_write_of_a_claim_taken_over_is_refused_for_the_same_owner(
    store: SqlMessageStore, clock: FakeClock
):
    """The fencing token, not the owner's name, decides: a claim the same process took again after
    its lease ran out makes the first claim's outcome stale."""
    await store.insert_messages([new_message(clock, "m1")])
    (first,) = await store.claim_due(clock.now(), "node-a", LEASE_S, 10)
    clock.advance(LEASE_S)
    (second,) = await claim_when_lease_ends(store, clock, "node-a")
    sent = SentOk(PENDING_WAITING_DELIVERY)
    accepted = Accepted(("mid-1",), PENDING_WAITING_DELIVERY)
    stale = transition_for(first, sent, clock.now(), accepted=accepted)
    assert await store.apply([stale], "node-a") == [False]
    assert await store.apply([transition_for(second, sent, clock.now(), accepted=accepted)], "node-a") == [
        True
    ]


async def test_a_claim_leaves_out_what_the_caller_still_works_on(store: SqlMessageStore, clock: FakeClock):
    await store.insert_messages([new_message(clock, "m1"), new_message(clock, "m2")])
    m1, _ = sorted(await store.claim_due(clock.now(), "node-a", LEASE_S, 10), key=lambda r: r.message_id)
    clock.advance(LEASE_S)  # both leases run out while node-a is still sending m1
    give_up = asyncio.get_running_loop().time() + 5.0
    taken: list[MessageRecord] = []
    while not taken and asyncio.get_running_loop().time() < give_up:
        taken = await store.claim_due(clock.now(), "node-a", LEASE_S, 10, exclude=(m1.pk,))
        await asyncio.sleep(0.02)  # polling for a condition, under a deadline
    assert [r.message_id for r in taken] == ["m2"]


async def test_an_outcome_written_starts_the_claims_count_again(store: SqlMessageStore, clock: FakeClock):
    await store.insert_messages([new_message(clock, "m1")])
    (rec,) = await store.claim_due(clock.now(), "node-a", LEASE_S, 10)
    assert rec.claims == 1
    retry = transition_for(rec, failover.TransientFailure("busy"), clock.now())
    assert await store.apply([retry], "node-a") == [True]
    clock.advance(3600)
    (again,) = await store.claim_due(clock.now(), "node-a", LEASE_S, 10)
    assert again.claims == 1


async def test_a_failover_can_keep_its_lease(store: SqlMessageStore, clock: FakeClock):
    """A lease holder going on with the next step itself keeps the message under its lease: no
    other claim takes it meanwhile, and if the holder dies it is due again when the lease ends."""
    await store.insert_messages([new_message(clock, "m1")])
    (rec,) = await store.claim_due(clock.now(), "node-a", LEASE_S, 10)
    reject = transition_for(rec, StepFailed(UNDELIVERABLE_NOT_DELIVERED, EC_UNKNOWN_USER), clock.now())
    until = clock.now() + timedelta(seconds=LEASE_S)
    assert await store.apply([msgspec.structs.replace(reject, lease_until=until)], "node-a") == [True]
    assert await store.claim_due(clock.now(), "node-b", LEASE_S, 10) == []
    clock.advance(LEASE_S)  # node-a died while sending the SMS step
    (again,) = await claim_when_lease_ends(store, clock, "node-b")
    assert again.state.step_index == 1 and again.state.phase is failover.Phase.READY
    assert again.version == rec.version + 2  # the failover's write, then node-b's claim


async def test_reports_are_pulled_once_even_with_concurrent_pullers(store: SqlMessageStore, clock: FakeClock):
    await store.insert_messages([new_message(clock, f"m{i}") for i in range(40)])
    records = await store.claim_due(clock.now(), "n", 30, 100)
    sms_failed = []
    for rec in records:
        t = transition_for(rec, StepFailed(UNDELIVERABLE_NOT_DELIVERED, EC_UNKNOWN_USER), clock.now())
        sms_failed.append(t)
    await store.apply(sms_failed, "n")
    clock.advance(1)
    records = await store.claim_due(clock.now(), "n", 30, 100)
    assert {r.state.step_index for r in records} == {1}
    finals = [
        transition_for(r, StepFailed(UNDELIVERABLE_NOT_DELIVERED, EC_UNKNOWN_USER), clock.now())
        for r in records
    ]
    await store.apply(finals, "n")
    pulls = await asyncio.gather(*(store.take_reports(1, Api.OMNI, ReportFilter(limit=7)) for _ in range(10)))
    ids = [json.loads(b)["messageId"] for batch in pulls for b in batch]
    assert len(ids) == len(set(ids)) == 40
    assert await store.take_reports(1, Api.OMNI, ReportFilter()) == []
    # another account sees nothing of this one's reports
    assert await store.take_reports(2, Api.OMNI, ReportFilter()) == []


async def test_report_filters(store: SqlMessageStore, clock: FakeClock):
    await store.insert_messages([new_message(clock, "keep"), new_message(clock, "other")])
    records = await store.claim_due(clock.now(), "n", 30, 10)
    for rec in records:
        accepted = Accepted(("r-" + rec.message_id,), PENDING_ENROUTE)
        await store.apply(
            [transition_for(rec, SentOk(PENDING_WAITING_DELIVERY), clock.now(), accepted=accepted)], "n"
        )
    clock.advance(61)
    for rec in await store.claim_due(clock.now(), "n", 30, 10):
        await store.apply([transition_for(rec, failover.DeadlineReached(), clock.now())], "n")
    clock.advance(61)
    for rec in await store.claim_due(clock.now(), "n", 30, 10):
        await store.apply([transition_for(rec, failover.DeadlineReached(), clock.now())], "n")
    picked = await store.take_reports(1, Api.OMNI, ReportFilter(message_id="keep"))
    assert [json.loads(b)["messageId"] for b in picked] == ["keep"]
    body = json.loads(picked[0])
    assert body["status"]["name"] == "EXPIRED_EXPIRED" and body["channel"] == "SMS"
    assert await store.take_reports(1, Api.OMNI, ReportFilter(channel="FACEBOOK")) == []
    assert len(await store.take_reports(1, Api.OMNI, ReportFilter(channel="SMS"))) == 1


async def test_claim_only_takes_due_messages(store: SqlMessageStore, clock: FakeClock):
    scheduled = failover.start(PLAN, clock.now(), clock.now() + timedelta(minutes=5))
    await store.insert_messages(
        [msgspec.structs.replace(new_message(clock, "later"), state=scheduled), new_message(clock, "now")]
    )
    assert [r.message_id for r in await store.claim_due(clock.now(), "n", 3600, 10)] == ["now"]
    clock.advance(301)
    assert [r.message_id for r in await store.claim_due(clock.now(), "n", 3600, 10)] == ["later"]


async def test_retention_drops_what_is_past_its_window(engine: AsyncEngine, writer: Writer, clock: FakeClock):
    from omnirelay.ports import LogFilter, Retention
    from omnirelay.services.housekeeping import Janitor
    from omnirelay.store.housekeeping import SqlHousekeeping
    from omnirelay.store.logs import SqlLogStore

    store = SqlMessageStore(engine, writer)
    await store.insert_messages([new_message(clock, "old"), new_message(clock, "pulled")])
    for rec in await store.claim_due(clock.now(), "n", 30, 10):
        await store.apply(
            [transition_for(rec, StepFailed(UNDELIVERABLE_NOT_DELIVERED, EC_UNKNOWN_USER), clock.now())], "n"
        )
    clock.advance(1)
    for rec in await store.claim_due(clock.now(), "n", 30, 10):
        await store.apply(
            [transition_for(rec, StepFailed(UNDELIVERABLE_NOT_DELIVERED, EC_UNKNOWN_USER), clock.now())], "n"
        )
    assert len(await store.take_reports(1, Api.OMNI, ReportFilter(message_id="pulled"))) == 1
    janitor = Janitor(SqlHousekeeping(writer), clock, Retention(report_s=48 * 3600, log_s=30 * 86400))
    clock.advance(47 * 3600)
    await janitor.run_once()
    logs = SqlLogStore(engine)
    assert len(await logs.logs(1, Api.OMNI, LogFilter())) == 2  # logs outlive reports
    clock.advance(2 * 3600)  # the unpulled report of "old" is past 48 h: dropped
    await janitor.run_once()
    assert await store.take_reports(1, Api.OMNI, ReportFilter()) == []
    assert len(await logs.logs(1, Api.OMNI, LogFilter())) == 2
    clock.advance(30 * 86400)  # and the logs past 30 days
    await janitor.run_once()
    assert await logs.logs(1, Api.OMNI, LogFilter()) == []


async def test_a_failed_driver_level_insert_is_raised_as_sqlalchemy_would(engine: AsyncEngine) -> None:
    # RowStatement bypasses SQLAlchemy's execution on SQLite: its errors must still be DBAPIErrors, so
    # that the writer answers "storage unavailable" (503) for an operational failure
    from sqlalchemy.exc import DBAPIError

    from omnirelay.store.engine import RowStatement
    from omnirelay.store.tables import messages

    insert_ids = RowStatement.inserting(messages, ("id", "account_id"))
    with pytest.raises(DBAPIError):
        async with engine.begin() as conn:
            await insert_ids.run_tuples(conn, [(1, None)])  # account_id is NOT NULL


async def test_a_row_statement_runs_mappings_in_its_own_parameter_order(engine: AsyncEngine) -> None:
    # The hot writes run as RowStatements (compiled once, executemany at the driver). Rows are
    # mappings whatever the order of their keys; the count of changed rows is what SQLite reports.
    from sqlalchemy import bindparam, insert, select, update

    from omnirelay.store.engine import RowStatement
    from omnirelay.store.tables import channel_refs

    add = RowStatement(
        insert(channel_refs).values(
            {c: bindparam(c) for c in ("channel", "ref", "message_pk", "step_index", "delivered")}
        )
    )
    mark = RowStatement(
        update(channel_refs)
        .where(channel_refs.c.ref == bindparam("b_ref"))
        .values(delivered=bindparam("b_delivered"), step_index=bindparam("b_step"))
    )
    async with engine.begin() as conn:
        rows = [
            {"delivered": False, "step_index": 0, "message_pk": 7, "ref": f"r{i}", "channel": "SMS"}
            for i in range(3)
        ]
        await add.run(conn, rows)
        changed = await mark.run(
            conn,
            [
                {"b_step": 1, "b_delivered": True, "b_ref": "r0"},
                {"b_ref": "nope", "b_step": 1, "b_delivered": True},
            ],
        )
        assert changed == (1 if engine.dialect.name == "sqlite" else None)
        assert await add.run(conn, []) == 0
        got = (
            await conn.execute(
                select(channel_refs.c.ref, channel_refs.c.step_index, channel_refs.c.delivered)
            )
        ).all()
    assert sorted(tuple(r) for r in got) == [("r0", 1, True), ("r1", 0, False), ("r2", 0, False)]


def test_a_row_statement_refuses_values_written_into_it() -> None:
    # `.values(delivered=True)` would put the value in the statement, not take it from the rows
    from sqlalchemy import bindparam, update

    from omnirelay.store.engine import RowStatement
    from omnirelay.store.tables import channel_refs

    with pytest.raises(ValueError, match="bindparam without a value"):
        RowStatement(
            update(channel_refs).where(channel_refs.c.ref == bindparam("b_ref")).values(delivered=True)
        )


@contextlib.asynccontextmanager
async def query_plans(engine: AsyncEngine) -> AsyncIterator[list[tuple[str, str]]]:
    """The statements SQLAlchemy runs within the block, each with SQLite's query plan (filled in
    when the block ends). Driver-level executemanys (`RowStatement`) are not seen."""
    from sqlalchemy import event

    seen: list[tuple[str, object]] = []
    plans: list[tuple[str, str]] = []

    def capture(_conn: object, _cursor: object, statement: str, parameters: object, *_: object) -> None:
        seen.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        yield plans
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    async with engine.connect() as conn:
        for statement, parameters in seen:
            rows = (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)).all()  # type: ignore[arg-type]
            plans.append((statement, " / ".join(str(row[-1]) for row in rows)))


async def test_receipts_find_their_channel_refs_by_primary_key(
    engine: AsyncEngine, store: SqlMessageStore, clock: FakeClock
) -> None:
    # `ref IN (…)` without the channel scanned all of channel_refs on every receipt batch (a table
    # that grows with every message sent). Every read of receipts and their settling must use the
    # (channel, ref) key: checked on SQLite's query plans of the statements they run.
    if engine.dialect.name != "sqlite":
        pytest.skip("query plans are read on SQLite")
    await store.insert_messages([new_message(clock, f"m{i}") for i in range(2)])
    claimed = sorted(await store.claim_due(clock.now(), "n", 30, 10), key=lambda r: r.message_id)
    for i, rec in enumerate(claimed):
        sent = Accepted((f"mid-{i}",), PENDING_WAITING_DELIVERY)
        assert await store.apply([transition_for(rec, SentOk(sent.status), clock.now(), accepted=sent)], "n")
    # the same ref on another channel is another message's: it must not match
    await store.record_receipts(
        [
            Receipt(Channel.FACEBOOK, "mid-0", DELIVERED_TO_HANDSET, NO_ERROR, clock.now()),
            Receipt(Channel.SMS, "mid-1", DELIVERED_TO_HANDSET, NO_ERROR, clock.now()),
        ],
        clock.now(),
    )
    async with query_plans(engine) as plans:
        due = {(d.receipt.channel, d.receipt.ref): d for d in await store.due_receipts(clock.now(), 10)}
        assert due[(Channel.FACEBOOK, "mid-0")].record is not None
        assert due[(Channel.SMS, "mid-1")].record is None  # mid-1 is a FACEBOOK ref
        outcomes = [ReceiptOutcome(d.id, retry_at=clock.now()) for d in due.values()]
        assert await store.settle_receipts(outcomes) == [True, True]
    reads = [(s, plan) for s, plan in plans if "channel_refs" in s]
    assert reads, plans
    for statement, plan in reads:
        assert "SCAN channel_refs" not in plan, (statement, plan)
    # the inbox poll: due receipts in index order, neither a scan in id order nor a sort of every
    # due row (a pile of unmatched receipts waiting for a retry is read on every poll)
    inbox = [(s, plan) for s, plan in plans if s.lstrip().startswith("SELECT") and "FROM receipts_inbox" in s]
    assert inbox, plans
    for statement, plan in inbox:
        assert "SCAN" not in plan and "TEMP B-TREE" not in plan, (statement, plan)


async def test_a_watermark_finds_waiting_messenger_sends_through_their_index(
    engine: AsyncEngine, writer: Writer, store: SqlMessageStore, clock: FakeClock
) -> None:
    # A Messenger read (and a delivery without mids) carries a watermark only; the look-up of what
    # it covers read the whole attempts table, every step of every message, on every such event.
    from omnirelay.store.inbound import SqlInboundStore

    await store.insert_messages([new_message(clock, f"m{i}") for i in range(3)])
    claimed = sorted(await store.claim_due(clock.now(), "n", 30, 10), key=lambda r: r.message_id)
    for i, rec in enumerate(claimed[:2]):  # m0, m1 sent and waiting; m2 not sent yet
        sent = Accepted((f"mid-{i}",), PENDING_WAITING_DELIVERY)
        assert await store.apply([transition_for(rec, SentOk(sent.status), clock.now(), accepted=sent)], "n")
    # m0 delivered: its attempt is closed, the watermark no longer covers it
    await store.record_receipts(
        [Receipt(Channel.FACEBOOK, "mid-0", DELIVERED_TO_HANDSET, NO_ERROR, clock.now())], clock.now()
    )
    (delivered,) = await store.due_receipts(clock.now(), 10)
    assert delivered.record is not None
    t = transition_for(delivered.record, Delivered(DELIVERED_TO_HANDSET), clock.now())
    assert await store.settle_receipts([ReceiptOutcome(delivered.id, transition=t)]) == [True]
    inbound = SqlInboundStore(engine, writer)
    until = clock.now() + timedelta(seconds=1)
    assert await inbound.waiting_refs("APP", ["user-1", "41793026727"], until) == ["mid-1"]
    assert await inbound.waiting_refs("OTHER", ["user-1"], until) == []
    assert await inbound.waiting_refs("APP", ["user-1"], clock.now() - timedelta(seconds=1)) == []
    if engine.dialect.name != "sqlite":
        return  # the rows above are the contract on both; the plan is read on SQLite
    async with query_plans(engine) as plans:
        await inbound.waiting_refs("APP", ["user-1", "41793026727"], until)
    assert plans
    for statement, plan in plans:
        assert "ix_attempts_open_facebook" in plan, (statement, plan)
        assert "SCAN attempts" not in plan and "SCAN channel_refs" not in plan, (statement, plan)


async def test_retention_reads_no_whole_table(engine: AsyncEngine, writer: Writer, clock: FakeClock) -> None:
    # The purge runs in the writer's transaction: a scan of messages or reports (tables that grow
    # with every message) held every write back for as long, every round, even with nothing to
    # purge. Each of its statements must find its rows through an index.
    if engine.dialect.name != "sqlite":
        pytest.skip("query plans are read on SQLite")
    from omnirelay.ports import Retention
    from omnirelay.store.forwards import SqlForwardStore
    from omnirelay.store.housekeeping import SqlHousekeeping

    store = SqlMessageStore(engine, writer)
    await store.insert_messages([new_message(clock, f"m{i}") for i in range(3)])
    async with query_plans(engine) as plans:
        await SqlHousekeeping(writer).purge(clock.now() + timedelta(days=400), Retention())
        await SqlForwardStore(engine, writer).claim_forwards(clock.now(), 30, 10)
    assert any("FROM messages" in s for s, _ in plans) and any("FROM reports" in s for s, _ in plans), plans
    for statement, plan in plans:
        assert not plan.startswith("SCAN") and " SCAN " not in plan, (statement, plan)
    # finished forwards are found by age, not by walking every finished one (next_try_at NULL), and
    # the sender's poll reads pending ones only
    forwards_plans = {s.split()[0]: plan for s, plan in plans if "FROM forwards" in s}
    assert "ix_forwards_done (created_at<?)" in forwards_plans["DELETE"], forwards_plans
    assert "ix_forwards_pending (next_try_at<?)" in forwards_plans["SELECT"], forwards_plans


async def test_receipt_refs_are_probed_by_key_on_postgresql(engine: AsyncEngine) -> None:
    # On a table without statistics yet (fresh, or growing faster than autovacuum analyzes it),
    # PostgreSQL took `channel = ? AND ref IN (…)` for unselective and read every ref of the channel
    # through the key's prefix: the receipt batches slowed down as channel_refs grew. The look-up must
    # find each ref through the primary key, whatever the statistics say.
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's planner; SQLite's plan is read by the test above")
    from sqlalchemy import event, text

    from omnirelay.store.messages import _channel_refs

    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO channel_refs (channel, ref, message_pk, step_index, delivered) "
                "SELECT 'SMS', 'r' || g, g, 1, false FROM generate_series(1, 20000) g"
            )
        )
    seen: list[tuple[str, Any]] = []

    def capture(_conn: object, _cursor: object, statement: str, parameters: Any, *_: object) -> None:
        seen.append((statement, parameters))

    wanted = {("SMS", f"r{i}") for i in range(1000, 1200)} | {("SMS", "absent"), ("FACEBOOK", "r5")}
    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with engine.connect() as conn:
            found = await _channel_refs(conn, wanted)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    assert set(found) == {("SMS", f"r{i}") for i in range(1000, 1200)}
    assert found[("SMS", "r1000")].message_pk == 1000
    assert len(seen) == 2, seen  # one look-up per channel
    async with engine.connect() as conn:
        for statement, parameters in seen:
            plan = [row[0] for row in await conn.exec_driver_sql("EXPLAIN " + statement, parameters)]
            scans = [line for line in plan if "on channel_refs" in line]
            assert scans and all("Index Scan" in line for line in scans), plan
            assert any("Index Cond" in line and "ref" in line for line in plan), plan


async def test_id_lists_are_one_statement_on_postgresql(
    engine: AsyncEngine, store: SqlMessageStore, clock: FakeClock
) -> None:
    # An `IN` list is another statement for every count of values, and asyncpg prepared each one
    # again (a round trip per batch on the writer's connection). On PostgreSQL the lists are one
    # array parameter: the same text whatever the count. On both, the same rows come back.
    from sqlalchemy import event

    from omnirelay.store.engine import one_of
    from omnirelay.store.tables import messages

    await store.insert_messages([new_message(clock, f"m{i}") for i in range(4)])
    async with engine.connect() as conn:
        pks = sorted((await conn.execute(select(messages.c.id))).scalars().all())
    pg = engine.dialect.name == "postgresql"
    texts: list[str] = []

    def capture(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        texts.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with engine.connect() as conn:
            found = [
                sorted(
                    (
                        await conn.execute(select(messages.c.id).where(one_of(messages.c.id, some, pg=pg)))
                    ).scalars()
                )
                for some in (pks[:1], pks[1:3], [*pks[2:], -1])
            ]
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    assert found == [pks[:1], pks[1:3], pks[2:]]
    assert len(set(texts)) == (1 if pg else 3), texts


@pytest.mark.postgres
async def test_two_writers_on_one_postgresql_claim_every_message_exactly_once(pg_database: str):
    """Two nodes, each with its own engine and group-commit writer on the same database, claim
    concurrently: every message is claimed once (SKIP LOCKED), no claim fails or deadlocks, and each
    node's outcome writes land."""
    engines = [make_engine(pg_database) for _ in range(2)]
    await migrate(engines[0])
    writers = [Writer(e) for e in engines]
    for w in writers:
        await w.start()
    try:
        async with engines[0].begin() as conn:
            names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))
        clock = FakeClock()
        stores = [SqlMessageStore(e, w) for e, w in zip(engines, writers, strict=True)]
        await stores[0].insert_messages([new_message(clock, f"m{i}") for i in range(600)])

        async def node(store: SqlMessageStore, owner: str) -> list[MessageRecord]:
            taken: list[MessageRecord] = []
            while batch := await store.claim_due(clock.now(), owner, 30, 25):
                taken.extend(batch)
                sent = SentOk(PENDING_WAITING_DELIVERY)
                outcomes = [
                    transition_for(r, sent, clock.now(), accepted=Accepted((f"{owner}-{r.pk}",), sent.status))
                    for r in batch
                ]
                assert await store.apply(outcomes, owner) == [True] * len(batch)
            return taken

        a, b = await asyncio.gather(*(node(s, f"node-{i}") for i, s in enumerate(stores)))
        claimed = [r.message_id for r in a + b]
        assert sorted(claimed) == sorted(f"m{i}" for i in range(600))  # each once, none missed
        assert a and b  # both nodes took part
    finally:
        for w in writers:
            await w.stop()
        for e in engines:
            await e.dispose()
