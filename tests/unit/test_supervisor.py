"""The supervisor restarts a task that crashes or ends, lists it as down meanwhile, and stops
tasks in reverse order, asking each to finish first."""

from __future__ import annotations

import asyncio
import logging

import pytest

from omnirelay.services.supervisor import Supervisor


class Flaky:
    """Crashes on its first run, then runs until stopped."""

    def __init__(self) -> None:
        self.runs = 0
        self.running = asyncio.Event()
        self.stopped = asyncio.Event()

    async def run(self) -> None:
        self.runs += 1
        if self.runs == 1:
            raise RuntimeError("a bug")
        self.running.set()
        await self.stopped.wait()

    async def stop(self, grace_s: float) -> None:
        self.stopped.set()


async def test_a_crashed_task_is_logged_and_restarted(caplog: pytest.LogCaptureFixture):
    sup = Supervisor(restart_min_s=0)
    flaky = Flaky()
    with caplog.at_level(logging.ERROR):
        sup.spawn("flaky", flaky.run, flaky)
        await asyncio.wait_for(flaky.running.wait(), 5)
    assert flaky.runs == 2 and sup.restarts("flaky") == 1
    assert any("task flaky crashed" in r.message and r.exc_info for r in caplog.records)
    assert sup.down() == []
    await sup.stop()


async def test_a_task_waiting_for_its_restart_is_down():
    sup = Supervisor(restart_min_s=30)  # the restart is far off: the task stays down meanwhile
    flaky = Flaky()
    sup.spawn("flaky", flaky.run, flaky)
    for _ in range(100):
        if sup.down():
            break
        await asyncio.sleep(0)
    assert sup.down() == ["flaky"]
    await sup.stop()
    assert sup.down() == [] and sup.names() == []


async def test_a_task_that_ends_is_restarted_too():
    sup = Supervisor(restart_min_s=0)
    ran = asyncio.Queue[int]()

    async def ends() -> None:
        ran.put_nowait(1)

    sup.spawn("ends", ends)
    for _ in range(3):
        await asyncio.wait_for(ran.get(), 5)
    await sup.stop()


async def test_stop_asks_in_reverse_order_and_cancels_what_does_not_finish():
    sup = Supervisor()
    order: list[str] = []

    class Polite:
        def __init__(self, name: str) -> None:
            self.name = name
            self.done = asyncio.Event()

        async def run(self) -> None:
            await self.done.wait()

        async def stop(self, grace_s: float) -> None:
            order.append(self.name)
            self.done.set()

    first, second = Polite("first"), Polite("second")
    sup.spawn("first", first.run, first)
    sup.spawn("second", second.run, second)
    cancelled = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    sup.spawn("stubborn", stubborn)
    await asyncio.sleep(0)
    await sup.stop(grace_s=1)
    assert order == ["second", "first"] and cancelled.is_set()
