"""Meta's throttling of a Page, told to every node (docs/architecture.md#cluster-wide-budgets).

Meta throttles a Page for its app, whichever node calls: a node that meets the throttle writes
until when, and every node reads the throttles each `interval_s` and holds its sends to those Pages
until then, rather than each learning it from an error of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Protocol

from omnirelay.services.rounds import run_rounds


class ThrottleStore(Protocol):
    async def publish(self, waits: Mapping[str, float]) -> None: ...

    async def current(self) -> dict[str, float]: ...


class ThrottledPages(Protocol):
    """The Graph sender's side: the throttles it met, and those met elsewhere."""

    def throttles_learnt(self) -> dict[str, float]: ...

    def throttled_elsewhere(self, waits: dict[str, float]) -> None: ...


class SharedThrottles:
    def __init__(self, store: ThrottleStore, pages: ThrottledPages, *, interval_s: float) -> None:
        self._store = store
        self._pages = pages
        self._interval_s = interval_s
        self._wake = asyncio.Event()
        self._stopping = False

    async def run(self) -> None:
        self._stopping = False
        await run_rounds("page-throttles", self._round, self._wake, self._interval_s, lambda: self._stopping)

    async def _round(self) -> float:
        await self.exchange()
        return self._interval_s

    async def exchange(self) -> None:
        """Tell the throttles met here, and take those met anywhere."""
        learnt = self._pages.throttles_learnt()
        if learnt:
            await self._store.publish(learnt)
        waits = await self._store.current()
        if waits:
            self._pages.throttled_elsewhere(waits)

    async def stop(self, grace_s: float) -> None:
        self._stopping = True
        self._wake.set()
