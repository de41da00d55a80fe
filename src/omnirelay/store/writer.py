"""Group commit: one task owns writes and commits many callers' work in one transaction.

Callers hand the writer a unit of work, `async def unit(conn) -> T`, and await its result. The
writer takes every unit waiting, runs them in order inside one transaction, commits once, then
releases every caller: durability at the cost of one fsync per batch, not per request. It is
also the single writer SQLite wants.

Work of the same kind can also be merged: `run_batched(fn, item)` queues one caller's `item`, and
adjacent items for the same `fn` are applied by one call, `fn(conn, items) -> results` (one
executemany instead of one statement per caller: the statements, not the fsync, are what a
batch spends its time on). Units keep their order.

Once woken by a first unit, the writer lets the event loop turn a few times (`gather_turns`) before
it takes the batch: a request whose bytes have already arrived needs several turns (its task is
created, reads its body, and so on) before its unit is queued. Without them, a batch held the few
requests that happened to be ahead and the others waited for the next commit: with 64 connections,
batches of 32 on average, a fifth of them of 1 to 3 units, each paying a commit (the sqlite thread's
~90 µs of CPU, SQLAlchemy's begin and commit). With 4 turns a batch holds ~63 of the 64 and
accepted sends rose by ~12-15 % (README, Performance). A turn costs microseconds; the commit's fsync
is milliseconds.

If a batch fails (one bad unit, a constraint violation), the writer re-runs its units one per
transaction so that only the faulty unit fails. If the database itself is unreachable, every
caller gets `StorageUnavailable` and nothing is reported as accepted.

Bounds: a transaction that has not committed within `transaction_timeout_s` is abandoned (its
connection dropped, its callers told `StorageUnavailable`), so a stalled database cannot hold the
writer forever. Intake sheds instead of queueing without limit: a `run_batched(..., shed=True)`
finding `max_queue` units already waiting is refused at once with `StorageBusy` (503 with
Retry-After); the dispatcher's and receipts' writes are never shed, since refusing the outcome of
a send already made would make it be sent again.

The loop (`serve`) answers every caller whatever happens to a batch and does not end but by
cancellation; the gateway's supervisor restarts it should it end all the same. A stopped writer
refuses work at once (`StorageUnavailable`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from omnirelay.domain.errors import StorageBusy, StorageUnavailable
from omnirelay.store.engine import reachable

log = logging.getLogger(__name__)

T = TypeVar("T")
ItemT = TypeVar("ItemT")
Unit = Callable[[AsyncConnection], Awaitable[Any]]
BatchFn = Callable[[AsyncConnection, list[Any]], Awaitable[list[Any]]]


class _Entry:
    """One caller's work: a `unit`, or an `item` for a batch function `fn`."""

    __slots__ = ("fn", "fut", "item", "unit")

    def __init__(self, unit: Unit | None, fn: BatchFn | None, item: Any, fut: asyncio.Future[Any]) -> None:
        self.unit = unit
        self.fn = fn
        self.item = item
        self.fut = fut


def _is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError | InterfaceError | OSError | StorageUnavailable):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class Writer:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        max_batch: int = 5000,
        gather_turns: int = 4,
        max_queue: int = 20_000,
        transaction_timeout_s: float = 30.0,
    ) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._gather_turns = gather_turns
        self._max_queue = max_queue
        self._transaction_timeout_s = transaction_timeout_s
        self._queue: asyncio.Queue[_Entry] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None  # the loop, when `start` runs it
        self._open = False  # taking work: from `open` (or `start`) to `stop`
        self._serving = 0  # loops running `serve`: one, or none while the supervisor restarts it
        # The writer keeps one connection: no pool checkout (PostgreSQL: no ping) and no reset on
        # return per batch, each a round trip. Dropped after a failure, opened again by the next batch.
        self._conn: AsyncConnection | None = None

    def open(self) -> None:
        """Take work from now on; `serve` does it (the gateway runs it under its supervisor, and work
        queued while it waits for a restart is done once it runs again)."""
        self._open = True

    async def start(self) -> None:
        """Open, and run the loop in a task of its own."""
        self.open()
        if self._task is None:
            self._task = asyncio.create_task(self.serve(), name="omnirelay-writer")

    @property
    def serving(self) -> bool:
        return self._serving > 0

    async def stop(self) -> None:
        self._open = False
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        queued = []
        while not self._queue.empty():
            queued.append(self._queue.get_nowait())
        self._shutting_down(queued)
        await self._drop_connection()

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(
                Exception
            ):  # a broken connection may fail to close: it is dropped anyway
                await conn.close()

    async def run(self, unit: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        if not self._open:
            raise StorageUnavailable("writer not running")
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Entry(unit, None, None, fut))
        return await fut

    async def run_batched(
        self,
        fn: Callable[[AsyncConnection, list[ItemT]], Awaitable[list[T]]],
        item: ItemT,
        *,
        shed: bool = False,
    ) -> T:
        """Apply `fn` to `item`, together with the adjacent queued items for the same `fn`. With
        `shed`, refuse at once (`StorageBusy`) when `max_queue` units already wait."""
        if not self._open:
            raise StorageUnavailable("writer not running")
        if shed and self._queue.qsize() >= self._max_queue:
            raise StorageBusy(retry_after_s=1.0)
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Entry(None, fn, item, fut))
        return await fut

    async def serve(self) -> None:
        """The writer's loop: take a batch, commit it, answer its callers; until cancelled."""
        self._serving += 1
        try:
            while True:
                batch = [await self._queue.get()]
                try:
                    for _ in range(self._gather_turns):  # let the requests already under way queue theirs
                        await asyncio.sleep(0)
                    while len(batch) < self._max_batch and not self._queue.empty():
                        batch.append(self._queue.get_nowait())
                    batch = [e for e in batch if not e.fut.cancelled()]
                    if batch:
                        await self._commit(batch)
                except asyncio.CancelledError:  # stopped: the callers taken are answered, not left waiting
                    self._shutting_down(batch)
                    raise
                except Exception as exc:
                    log.exception("writer batch failed unexpectedly")
                    await self._drop_connection()
                    self._fail(batch, exc)
        finally:
            self._serving -= 1

    async def _commit(self, batch: list[_Entry]) -> None:
        try:
            results = await self._transaction(batch)
        except Exception as exc:  # noqa: BLE001 - every caller must get an answer
            await self._drop_connection()
            if not _is_unavailable(exc) and isinstance(exc, DBAPIError) and not await reachable(self._engine):
                exc = StorageUnavailable(f"database unreachable: {type(exc.orig).__name__}")
            if _is_unavailable(exc) or len(batch) == 1:
                self._fail(batch, exc)
                return
            log.warning("batch of %d failed (%s); retrying its units one by one", len(batch), exc)
            for item in batch:
                try:
                    (result,) = await self._transaction([item])
                except Exception as one_exc:  # noqa: BLE001 - isolates the faulty unit
                    await self._drop_connection()
                    self._fail([item], one_exc)
                else:
                    if not item.fut.done():
                        item.fut.set_result(result)
            return
        for entry, result in zip(batch, results, strict=True):
            if not entry.fut.done():
                entry.fut.set_result(result)

    async def _transaction(self, entries: list[_Entry]) -> list[Any]:
        try:
            async with asyncio.timeout(self._transaction_timeout_s):
                return await self._transaction_unbounded(entries)
        except TimeoutError as exc:
            raise StorageUnavailable(
                f"transaction not committed within {self._transaction_timeout_s} s"
            ) from exc

    async def _transaction_unbounded(self, entries: list[_Entry]) -> list[Any]:
        results: list[Any] = []
        if self._conn is None:
            self._conn = await self._engine.connect()
        conn = self._conn
        async with conn.begin():
            i = 0
            while i < len(entries):
                entry = entries[i]
                if entry.unit is not None:
                    results.append(await entry.unit(conn))
                    i += 1
                    continue
                j = i + 1
                while j < len(entries) and entries[j].unit is None and entries[j].fn == entry.fn:
                    j += 1
                assert entry.fn is not None
                out = await entry.fn(conn, [e.item for e in entries[i:j]])
                if len(out) != j - i:
                    raise RuntimeError(f"batch function returned {len(out)} results for {j - i} items")
                results.extend(out)
                i = j
        return results

    @staticmethod
    def _shutting_down(entries: list[_Entry]) -> None:
        for entry in entries:
            if not entry.fut.done():
                entry.fut.set_exception(StorageUnavailable("shutting down"))

    @staticmethod
    def _fail(batch: list[_Entry], exc: Exception) -> None:
        if _is_unavailable(exc):
            log.error("storage unavailable: %s", exc)
            err: Exception = StorageUnavailable()
            err.__cause__ = exc
        else:
            err = exc
        for entry in batch:
            if not entry.fut.done():
                entry.fut.set_exception(err)
