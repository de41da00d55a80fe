"""The console's reads (docs/console.md#search-and-indexes), on SQLite and PostgreSQL alike."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from omnirelay.domain.messages import Channel, Step, SuccessCriterion
from omnirelay.domain.scenarios import Scenario
from omnirelay.domain.statuses import DELIVERED_TO_HANDSET, STATUSES, StatusGroup
from omnirelay.ports import ConsoleQuery
from omnirelay.store.accounts import SqlAccountStore
from omnirelay.store.console import SqlConsoleStore
from omnirelay.store.logs import SqlLogStore
from omnirelay.store.messages import SqlMessageStore
from omnirelay.store.scenarios import SqlScenarioStore
from omnirelay.store.writer import Writer
from tests.contract.test_message_store import new_message, query_plans
from tests.doubles import FakeClock


@pytest.fixture
async def console(
    engine: AsyncEngine, writer: Writer, store: SqlMessageStore, clock: FakeClock
) -> SqlConsoleStore:
    """Account 1 with 120 messages, three to a millisecond (ties broken by row id), every tenth
    of bulk B; account 2 with 5."""
    accounts = SqlAccountStore(engine, writer)
    assert await accounts.create_account("one", "x", clock.now()) == 1
    assert await accounts.create_account("two", "x", clock.now()) == 2
    for batch in range(40):
        items = []
        for k in range(3):
            i = batch * 3 + k
            m = new_message(clock, f"m{i:03d}")
            if i % 10 == 0:
                m = msgspec.structs.replace(m, bulk_id="B")
            items.append(m)
        await store.insert_messages(items)
        clock.advance(0.001)
    await store.insert_messages([new_message(clock, f"other{i}", account_id=2) for i in range(5)])
    return SqlConsoleStore(engine)


async def pages(console: SqlConsoleStore, account_id: int | None, query: ConsoleQuery) -> list[list[str]]:
    out: list[list[str]] = []
    before = None
    while True:
        page = await console.search(account_id, dataclasses.replace(query, before=before))
        out.append([m.message_id for m in page.rows])
        cursors = [m.cursor for m in page.rows]
        assert cursors == sorted(cursors, reverse=True), "newest first"
        if page.next_before is None:
            return out
        before = page.next_before


async def test_keyset_pages_are_newest_first_disjoint_and_complete(console: SqlConsoleStore):
    mine = await pages(console, 1, ConsoleQuery(limit=50))
    assert [len(p) for p in mine] == [50, 50, 20]
    flat = [m for p in mine for m in p]
    assert flat == [f"m{i:03d}" for i in reversed(range(120))]  # ties on created_at broken by id
    everyone = await pages(console, None, ConsoleQuery(limit=50))
    assert sum(len(p) for p in everyone) == 125 and len({m for p in everyone for m in p}) == 125


async def test_filters_and_tenants(console: SqlConsoleStore, clock: FakeClock):
    async def ids(account_id: int | None, **kw: object) -> list[str]:
        return [m.message_id for m in (await console.search(account_id, ConsoleQuery(**kw))).rows]  # type: ignore[arg-type]

    assert await ids(1, message_id="m007") == ["m007"]
    assert await ids(2, message_id="m007") == []  # another account's message does not exist here
    assert await ids(None, message_id="m007") == ["m007"]  # the operator's does
    assert await ids(1, bulk_id="B") == [f"m{i:03d}" for i in range(110, -1, -10)]
    assert await ids(2, bulk_id="B") == []
    assert len(await ids(1, to="user-1")) == 50  # the first step's destination, a page of them
    assert await ids(2, to="nobody") == []
    pending = tuple(s.id for s in STATUSES.values() if s.group is StatusGroup.PENDING)
    assert len(await ids(2, status_ids=pending)) == 5
    assert await ids(2, status_ids=(DELIVERED_TO_HANDSET.id,)) == []
    assert len(await ids(2, channel="FACEBOOK")) == 5 and await ids(2, channel="SMS") == []
    start = clock.now() - timedelta(seconds=0.040)  # 40 ms after the first batch: batches 0..39
    assert await ids(1, since=clock.now() - timedelta(milliseconds=1), until=clock.now()) == [
        "m119",
        "m118",
        "m117",
    ]
    assert len(await ids(1, since=start, limit=200)) == 120
    # a journey is its account's, or the operator's
    (row,) = (await console.search(1, ConsoleQuery(message_id="m007"))).rows
    assert (await console.journey(1, row.pk)) is not None
    assert await console.journey(2, row.pk) is None
    assert (await console.journey(None, row.pk)) is not None


async def test_every_search_seeks_an_index(engine: AsyncEngine, console: SqlConsoleStore):
    # At a million messages a search that walks the table or sorts every match is seconds, not
    # milliseconds: each shape must read its rows in index order (checked on SQLite's plans).
    if engine.dialect.name != "sqlite":
        pytest.skip("query plans are read on SQLite")
    shapes: list[tuple[int | None, ConsoleQuery, str]] = [
        (1, ConsoleQuery(), "ix_messages_account_created"),
        (1, ConsoleQuery(before=(10**13, 10)), "ix_messages_account_created"),
        (None, ConsoleQuery(), "ix_messages_created"),
        (1, ConsoleQuery(message_id="m007"), "uq_messages_account_message_id"),
        (None, ConsoleQuery(message_id="m007"), "uq_messages_account_message_id"),
        (1, ConsoleQuery(bulk_id="B"), "ix_messages_account_bulk"),
        (1, ConsoleQuery(to="user-1"), "ix_messages_account_to"),
        (None, ConsoleQuery(to="user-1"), "ix_messages_account_to"),
    ]
    for account_id, query, index in shapes:
        async with query_plans(engine) as plans:
            await console.search(account_id, query)
        ((_statement, plan),) = plans
        # SQLite names a unique constraint's index after the table
        wanted = index if not index.startswith("uq_") else "sqlite_autoindex_messages"
        assert wanted in plan, (query, plan)
        assert "SCAN messages " not in plan.replace(f"SCAN messages USING INDEX {index}", ""), (query, plan)
        if account_id is not None:
            assert "TEMP B-TREE" not in plan, (query, plan)


async def test_the_overview_reads_its_window_through_indexes(
    engine: AsyncEngine, console: SqlConsoleStore, clock: FakeClock
):
    # The overview is polled every 5 s by every open page: what finished in the window comes
    # from ix_messages_done, what was accepted from the accepted-at indexes, never a whole history.
    if engine.dialect.name != "sqlite":
        pytest.skip("query plans are read on SQLite")
    for account_id in (1, None):
        async with query_plans(engine) as plans:
            await console.overview(account_id, clock.now() - timedelta(minutes=60), clock.now())
        assert len(plans) == 4, plans
        for statement, plan in plans:
            if "done_at >=" in statement:
                assert "ix_messages_done" in plan, (account_id, statement, plan)
            else:
                assert "ix_messages_account_created" in plan or "ix_messages_created" in plan, (
                    statement,
                    plan,
                )


async def test_the_overview_names_the_funnels_scenarios_of_every_account(
    engine: AsyncEngine, writer: Writer, console: SqlConsoleStore, clock: FakeClock
):
    # docs/console.md#overview: the funnel's rows carry a scenario key only; the operator's span accounts
    store = SqlScenarioStore(engine, writer)
    flow = (Step(Channel.SMS, "InfoSMS", SuccessCriterion.ACCEPTED),)
    one = await store.create(1, Scenario("K1", "<one>", flow, True), clock.now())
    two = await store.create(2, Scenario("K2", "two", flow, True), clock.now())
    await store.create(2, Scenario("K3", "not asked for", flow, False), clock.now())
    assert await console.scenarios(["K1", "K2", "gone"]) == {"K1": one, "K2": two}
    assert await console.scenarios([]) == {}


async def test_the_operators_funnel_reads_its_period_through_an_index(
    engine: AsyncEngine, console: SqlConsoleStore, clock: FakeClock
):
    logs = SqlLogStore(engine)
    since, until = clock.now() - timedelta(minutes=60), clock.now() + timedelta(seconds=1)
    # none of the fixture's messages has been sent yet: no attempt, no step
    assert await logs.funnel(None, since, until) == []
    if engine.dialect.name != "sqlite":
        return
    async with query_plans(engine) as plans:
        await logs.funnel(None, since, until)
    ((_, plan),) = plans
    assert "ix_messages_created" in plan, plan
