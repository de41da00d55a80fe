"""The group-commit writer, on SQLite and PostgreSQL alike: what lands in one batch, and what callers
get when it stops."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from omnirelay.domain.errors import StorageBusy, StorageUnavailable
from omnirelay.store.writer import Writer


async def test_units_queued_within_a_few_loop_turns_share_one_batch(writer: Writer) -> None:
    # A request reaches the writer a few turns of the loop after its bytes arrived; requests under
    # way together must be committed together, not one commit for the first and one for the rest.
    calls: list[list[int]] = []

    async def fn(conn: AsyncConnection, items: list[int]) -> list[int]:
        calls.append(items)
        return [i * 10 for i in items]

    async def caller(i: int, turns: int) -> int:
        for _ in range(turns):
            await asyncio.sleep(0)
        return await writer.run_batched(fn, i)

    results = await asyncio.gather(*(caller(i, turns=i % 3) for i in range(9)))
    assert results == [i * 10 for i in range(9)]
    assert len(calls) == 1
    assert sorted(calls[0]) == list(range(9))


async def test_stop_answers_the_callers_in_flight(engine: AsyncEngine) -> None:
    writer = Writer(engine)
    await writer.start()
    entered = asyncio.Event()

    async def stuck(conn: AsyncConnection) -> None:
        entered.set()
        await asyncio.Event().wait()  # a statement that never returns

    in_flight = asyncio.create_task(writer.run(stuck))
    await entered.wait()
    queued = asyncio.create_task(writer.run(stuck))
    await asyncio.sleep(0)
    await writer.stop()
    for task in (in_flight, queued):
        with pytest.raises(StorageUnavailable):
            await asyncio.wait_for(task, 5)


async def test_a_failed_batch_is_retried_unit_by_unit_so_only_the_faulty_unit_fails(
    engine: AsyncEngine,
) -> None:
    """One unit breaks the batch's transaction: the writer runs the units again one per transaction;
    the good ones commit, the faulty one's caller alone gets the error."""
    await _scratch_table(engine)
    writer = Writer(engine)
    await writer.start()
    try:

        def insert(value: int) -> Callable[[AsyncConnection], Awaitable[int]]:
            async def unit(conn: AsyncConnection) -> int:
                await conn.execute(text("INSERT INTO writer_scratch (v) VALUES (:v)"), {"v": value})
                return value

            return unit

        async def faulty(conn: AsyncConnection) -> None:
            await conn.execute(text("INSERT INTO writer_scratch (v) VALUES (NULL)"))  # NOT NULL

        results = await asyncio.gather(
            writer.run(insert(1)), writer.run(faulty), writer.run(insert(2)), return_exceptions=True
        )
        assert results[0] == 1 and results[2] == 2
        assert isinstance(results[1], IntegrityError)
        async with engine.connect() as conn:
            stored = sorted(v for (v,) in await conn.execute(text("SELECT v FROM writer_scratch")))
        assert stored == [1, 2]
    finally:
        await writer.stop()


async def _scratch_table(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS writer_scratch"))
        await conn.execute(text("CREATE TABLE writer_scratch (v INTEGER NOT NULL)"))


async def test_a_bug_in_a_batch_answers_its_callers_and_the_writer_goes_on(engine: AsyncEngine) -> None:
    """Whatever escapes a batch (here a batch function breaking its own contract) is answered to the
    callers; the loop keeps serving the next ones."""
    writer = Writer(engine)
    await writer.start()
    try:

        async def broken(conn: AsyncConnection, items: list[int]) -> list[int]:
            return []  # one result short: the writer refuses the batch

        with pytest.raises(RuntimeError):
            await writer.run_batched(broken, 1)

        async def fine(conn: AsyncConnection) -> int:
            return 7

        assert await writer.run(fine) == 7
        assert writer.serving
    finally:
        await writer.stop()


async def test_a_stopped_writer_refuses_work_at_once(engine: AsyncEngine) -> None:
    writer = Writer(engine)
    await writer.start()
    await writer.stop()

    async def fine(conn: AsyncConnection) -> int:
        return 7

    with pytest.raises(StorageUnavailable):
        await writer.run(fine)


async def test_intake_is_shed_when_the_queue_is_full(engine: AsyncEngine) -> None:
    """With `max_queue` units waiting behind a stalled transaction, intake (`shed=True`) is refused
    with StorageBusy at once; other writes still queue and are answered when storage moves again."""
    writer = Writer(engine, max_queue=3)
    await writer.start()
    release, entered = asyncio.Event(), asyncio.Event()

    async def stall(conn: AsyncConnection) -> None:
        entered.set()
        await release.wait()

    async def one(conn: AsyncConnection, items: list[int]) -> list[int]:
        return items

    try:
        stalled = asyncio.create_task(writer.run(stall))
        await entered.wait()
        queued = [asyncio.create_task(writer.run_batched(one, i)) for i in range(3)]
        await asyncio.sleep(0)  # let them reach the queue
        with pytest.raises(StorageBusy) as refused:
            await writer.run_batched(one, 99, shed=True)
        assert refused.value.retry_after_s >= 1
        kept = asyncio.create_task(writer.run_batched(one, 100))  # not shed: an outcome to write
        release.set()
        await stalled
        assert [await q for q in queued] == [0, 1, 2]
        assert await kept == 100
    finally:
        await writer.stop()


async def test_a_transaction_that_never_commits_is_abandoned(engine: AsyncEngine) -> None:
    writer = Writer(engine, transaction_timeout_s=0.2)
    await writer.start()

    async def hang(conn: AsyncConnection) -> None:
        await asyncio.Event().wait()

    async def fine(conn: AsyncConnection) -> int:
        return 7

    try:
        with pytest.raises(StorageUnavailable):
            await asyncio.wait_for(writer.run(hang), 5)
        assert await writer.run(fine) == 7  # the writer goes on with a new connection
    finally:
        await writer.stop()
