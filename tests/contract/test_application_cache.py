"""The send-path caches (`SqlApplicationStore`, `SqlScenarioStore`) on every backend: concurrent
misses share one read, and a write drops what was cached (and what was being read) before it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from omnirelay.ports import MessengerApplication, MessengerUser
from omnirelay.store.applications import SqlApplicationStore
from omnirelay.store.writer import Writer

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _app(name: str = "shop") -> MessengerApplication:
    return MessengerApplication(
        key="app-1",
        account_id=1,
        name=name,
        page_id="1001",
        page_access_token="token",
        app_secret="secret",
        verify_token="verify",
    )


def _count_reads(engine: AsyncEngine, table: str = "applications") -> list[str]:
    """Every SELECT of `table` the engine runs, as it reaches the driver."""
    seen: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _on_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and f"FROM {table}" in statement:
            seen.append(statement)

    return seen


async def test_concurrent_misses_share_one_read(engine: AsyncEngine, writer: Writer):
    store = SqlApplicationStore(engine, writer)
    await store.create_application(_app(), NOW)
    reads = _count_reads(engine)

    found = await asyncio.gather(*(store.application("app-1") for _ in range(50)))
    assert [a.name if a else None for a in found] == ["shop"] * 50
    assert len(reads) == 1
    missing = await asyncio.gather(*(store.application("nope") for _ in range(20)))
    assert missing == [None] * 20
    assert len(reads) == 2
    assert await store.application("app-1") is not None  # cached
    assert len(reads) == 2


async def test_a_write_drops_the_cache_and_reads_begun_before_it(engine: AsyncEngine, writer: Writer):
    store = SqlApplicationStore(engine, writer)
    await store.create_application(_app(), NOW)
    reads = _count_reads(engine)
    assert (await store.application("app-1")).name == "shop"  # type: ignore[union-attr]

    await store.update_application(_app("renamed"))
    assert (await store.application("app-1")).name == "renamed"  # type: ignore[union-attr]
    assert len(reads) == 2

    # A read in flight when a write lands is answered but not kept: the next lookup reads again.
    # The read is held between its SELECT and its answer (it saw the row before the write).
    selected, release = asyncio.Event(), asyncio.Event()

    async def slow_read(conn: Any) -> MessengerApplication:
        selected.set()
        await release.wait()
        return _app("renamed")  # what the read saw before the write

    store._reads.clear()
    before = asyncio.ensure_future(store._reads.get(("app", "app-1"), slow_read))
    await selected.wait()
    await store.update_application(_app("again"))
    release.set()
    assert (await before).name == "renamed"  # its caller gets what it read
    assert (await store.application("app-1")).name == "again"  # type: ignore[union-attr]


async def test_a_caller_that_gives_up_does_not_cancel_the_shared_read(engine: AsyncEngine, writer: Writer):
    store = SqlApplicationStore(engine, writer)
    await store.create_application(_app(), NOW)
    reads = _count_reads(engine)
    impatient = asyncio.ensure_future(store.application("app-1"))
    patient = asyncio.ensure_future(store.application("app-1"))
    await asyncio.sleep(0)
    impatient.cancel()
    assert (await patient).name == "shop"  # type: ignore[union-attr]
    assert impatient.cancelled()
    assert len(reads) == 1


async def test_phone_lookups_of_a_moment_share_one_query(engine: AsyncEngine, writer: Writer):
    store = SqlApplicationStore(engine, writer)
    await store.create_application(_app(), NOW)
    await store.add_user(MessengerUser("u-old", "app-1", "psid-old", phone_number="41790000001"), NOW)
    later = datetime(2026, 1, 2, tzinfo=UTC)
    await store.add_user(MessengerUser("u-new", "app-1", "psid-new", phone_number="41790000001"), later)
    await store.add_user(MessengerUser("u-2", "app-1", "psid-2", phone_number="41790000002"), NOW)
    seen = _count_reads(engine, "messenger_users")
    phones = [f"4179000{i:04d}" for i in range(1200)]  # more than one query's worth of numbers
    found = await asyncio.gather(*(store.user_by_phone("app-1", p) for p in phones))
    assert found[1] is not None and found[1].user_key == "u-old"  # the first registered with the number
    assert found[2] is not None and found[2].user_key == "u-2"
    assert sum(1 for f in found if f is not None) == 2
    assert len(seen) == 3  # 1,200 numbers, one application: 3 queries of at most 500, not 1,200
    assert await store.user_by_phone("app-1", "41790000002") == found[2]  # cached
    assert await store.user_by_phone("other-app", "41790000002") is None  # another application's number
    assert len(seen) == 4


async def test_a_phone_lookup_given_up_leaves_the_others_of_its_number(engine: AsyncEngine, writer: Writer):
    store = SqlApplicationStore(engine, writer)
    await store.create_application(_app(), NOW)
    await store.add_user(MessengerUser("u-1", "app-1", "psid-1", phone_number="41790000001"), NOW)
    reads = _count_reads(engine, "messenger_users")
    impatient = asyncio.ensure_future(store.user_by_phone("app-1", "41790000001"))
    patient = asyncio.ensure_future(store.user_by_phone("app-1", "41790000001"))
    await asyncio.sleep(0)
    impatient.cancel()
    user = await patient
    assert user is not None and user.user_key == "u-1"
    assert impatient.cancelled()
    assert len(reads) == 1  # one query for both


async def test_scenario_misses_share_one_read_and_a_write_drops_them(engine: AsyncEngine, writer: Writer):
    # Every OMNI send resolves its scenario: when the cached default expired, each request in flight
    # read it again (64 reads at once under load, queued on the pool).
    from omnirelay.domain.messages import Channel, Step
    from omnirelay.domain.scenarios import Scenario
    from omnirelay.store.scenarios import SqlScenarioStore

    store = SqlScenarioStore(engine, writer)
    flow = (Step(Channel.FACEBOOK, "app-1"), Step(Channel.SMS, "InfoSMS"))
    created = await store.create(1, Scenario("S1", "first", flow, True), NOW)
    reads = _count_reads(engine, "scenarios")
    found = await asyncio.gather(
        *(store.default(1) for _ in range(50)), *(store.get(1, "S1") for _ in range(50))
    )
    assert found == [created] * 100
    assert len(reads) == 2  # one for the default, one for the key
    assert await store.default(1) == created  # cached
    assert len(reads) == 2
    await store.create(1, Scenario("S2", "second", flow[1:], True), NOW)  # the new default
    reads.clear()  # (the write reads scenarios too)
    second = await store.default(1)
    assert second is not None and second.key == "S2"
    assert len(reads) == 1
