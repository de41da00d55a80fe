"""The worker loop: a wake-up during a round is kept; a failing round does not stop the loop."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from omnirelay.services.rounds import run_rounds


async def test_a_wake_during_a_round_cuts_the_next_sleep_short():
    wake = asyncio.Event()
    second = asyncio.Event()
    started: list[float] = []

    async def round_() -> float:
        started.append(time.monotonic())
        if len(started) == 1:
            wake.set()  # new work arrives while this round runs
        else:
            second.set()
        return 30.0  # nothing left: sleep long

    task = asyncio.create_task(run_rounds("t", round_, wake, 30.0))
    async with asyncio.timeout(5):
        await second.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert started[1] - started[0] < 1.0


async def test_a_failing_round_is_logged_and_the_loop_goes_on(caplog: pytest.LogCaptureFixture):
    wake = asyncio.Event()
    third = asyncio.Event()
    rounds = 0

    async def round_() -> float:
        nonlocal rounds
        rounds += 1
        if rounds == 1:
            raise RuntimeError("boom")
        if rounds == 3:
            third.set()
        return 0.01

    task = asyncio.create_task(run_rounds("t", round_, wake, 0.01))
    async with asyncio.timeout(5):
        await third.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert any("t round failed" in r.getMessage() and r.exc_info for r in caplog.records)
