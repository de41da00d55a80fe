"""The loop every background worker runs: a round of work, then a sleep a wake-up can cut short."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def run_rounds(
    name: str,
    round_: Callable[[], Awaitable[float]],
    wake: asyncio.Event,
    retry_s: float,
    stopping: Callable[[], bool] = lambda: False,
) -> None:
    """Repeat `round_` until cancelled, or until `stopping()` is true between two rounds (a
    graceful stop that must not cut a round short: a claim committed and then abandoned would
    leave its messages leased to nobody until the lease runs out).

    A round returns how long to sleep before the next one (0: go on at once, there is more work).
    The wake-up is cleared before each round, so one set during a round (new work committed, a
    failover) cuts the following sleep short instead of being lost. A round that fails is logged,
    and the loop carries on after `retry_s`: `except Exception` belongs at the top of a worker loop.
    """
    while not stopping():
        wake.clear()
        try:
            idle_s = await round_()
        except Exception:
            log.exception("%s round failed; carrying on", name)
            idle_s = retry_s
        if idle_s > 0 and not wake.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), idle_s)
