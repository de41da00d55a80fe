"""Waiting in tests: poll for a condition under a deadline, never a fixed sleep standing in for it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def until(
    condition: Callable[[], Awaitable[bool] | bool], within_s: float = 10.0, what: str = "condition"
) -> None:
    """Wait for `condition` to hold, looking every few milliseconds; fail after `within_s`."""
    give_up = asyncio.get_running_loop().time() + within_s
    while True:
        held = condition()
        if not isinstance(held, bool):
            held = await held
        if held:
            return
        if asyncio.get_running_loop().time() > give_up:
            raise AssertionError(f"{what} not met within {within_s} s")
        await asyncio.sleep(0.005)  # the polling interval, under the deadline above
