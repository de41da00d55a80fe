"""Send-path reads of rows that change rarely (applications, Messenger users, scenarios), cached
for a few seconds by the store that reads them.

Concurrent misses of one key share one read: when an entry expires, the requests in flight (64 at
the bench's load) would otherwise each open a read connection, more than the pool holds, and queue
behind each other (a latency spike every few seconds). A write made through the store drops the
cache, and a read that overlapped the write is answered but not remembered (a generation counter),
so on this node a read never sees a row older than the last write. Another node's write is seen
within the TTL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from omnirelay.store.engine import reading

T = TypeVar("T")
TTL_S = 5.0


def _retrieve(done: asyncio.Future[Any]) -> None:
    """Its waiters get a read's error; this keeps asyncio quiet when they have all gone."""
    if not done.cancelled():
        done.exception()


class ReadCache:
    def __init__(self, engine: AsyncEngine, *, ttl_s: float = TTL_S, max_entries: int = 100_000) -> None:
        self._engine = engine
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._loading: dict[Hashable, asyncio.Task[Any]] = {}
        self.generation = 0  # bumped around every write: a read that overlapped one is not kept

    def peek(self, key: Hashable) -> tuple[bool, Any]:
        """(True, value) if `key` is cached and fresh, else (False, None)."""
        hit = self._entries.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return True, hit[1]
        return False, None

    async def get(self, key: Hashable, load: Callable[[AsyncConnection], Awaitable[Any]]) -> Any:
        """The cached value of `key`, or what `load` reads on a read connection (one read for all
        the callers that miss meanwhile)."""
        hit, value = self.peek(key)
        if hit:
            return value
        task = self._loading.get(key)
        if task is None:
            task = self._loading[key] = asyncio.create_task(self._load(key, load))
            task.add_done_callback(_retrieve)
        return await asyncio.shield(task)  # a caller that gives up does not cancel the others' read

    async def _load(self, key: Hashable, load: Callable[[AsyncConnection], Awaitable[Any]]) -> Any:
        generation = self.generation
        try:
            async with reading(self._engine) as conn:
                value = await load(conn)
        finally:
            if self._loading.get(key) is asyncio.current_task():
                del self._loading[key]
        self.remember(key, value, generation)
        return value

    def remember(self, key: Hashable, value: Any, generation: int) -> None:
        """Cache what a read begun at `generation` found, unless a write came since."""
        if generation != self.generation:
            return
        if len(self._entries) > self._max_entries:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self._ttl_s, value)

    def clear(self) -> None:
        self._entries.clear()
        self._loading.clear()

    async def writing(self, write: Awaitable[T]) -> T:
        """Await a write made through the store: what was cached, or read meanwhile, is dropped."""
        self.generation += 1
        try:
            return await write
        finally:
            self.generation += 1
            self.clear()
