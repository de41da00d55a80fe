"""The retention loop: purges what is past its window, a chunk at a time."""

from __future__ import annotations

import asyncio
import logging

from omnirelay.ports import Clock, Housekeeping, Retention

log = logging.getLogger(__name__)


class Janitor:
    def __init__(
        self, store: Housekeeping, clock: Clock, retention: Retention, *, interval_s: float = 300
    ) -> None:
        self._store = store
        self._clock = clock
        self._retention = retention
        self._interval_s = interval_s

    async def run_once(self) -> int:
        total = 0
        while True:
            removed = await self._store.purge(self._clock.now(), self._retention)
            total += removed
            if removed == 0:
                return total

    async def run(self) -> None:
        while True:
            try:
                removed = await self.run_once()
                if removed:
                    log.info("retention: %d rows past their window removed", removed)
            except Exception:
                log.exception("retention round failed; carrying on")
            await asyncio.sleep(self._interval_s)
