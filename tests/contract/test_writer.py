"""The group-commit writer, on SQLite and PostgreSQL alike: what lands in one batch, and what callers
get when it stops."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from omnirelay.domain.errors import StorageUnavailable
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
