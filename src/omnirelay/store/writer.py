"""Group commit: one task owns writes and commits many callers' work in one transaction.

Callers hand the writer a unit of work, `async def unit(conn) -> T`, and await its result. The
writer takes every unit waiting, runs them in order inside one transaction, commits once, then
releases every caller: durability at the cost of one fsync per batch, not per request. It is
also the single writer SQLite wants.

If a batch fails (one bad unit, a constraint violation), the writer re-runs its units one per
transaction so that only the faulty unit fails. If the database itself is unreachable, every
caller gets `StorageUnavailable` and nothing is reported as accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from omnirelay.domain.errors import StorageUnavailable
from omnirelay.store.engine import reachable

log = logging.getLogger(__name__)

T = TypeVar("T")
Unit = Callable[[AsyncConnection], Awaitable[Any]]


def _is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError | InterfaceError | OSError | StorageUnavailable):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class Writer:
    def __init__(self, engine: AsyncEngine, *, max_batch: int = 5000) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[Unit, asyncio.Future[Any]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="omnirelay-writer")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while not self._queue.empty():
            _, fut = self._queue.get_nowait()
            if not fut.done():
                fut.set_exception(StorageUnavailable("shutting down"))

    async def run(self, unit: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        if self._task is None:
            raise StorageUnavailable("writer not running")
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((unit, fut))
        return await fut

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            batch = [(u, f) for u, f in batch if not f.cancelled()]
            if batch:
                await self._commit(batch)

    async def _commit(self, batch: list[tuple[Unit, asyncio.Future[Any]]]) -> None:
        try:
            results = await self._transaction([u for u, _ in batch])
        except Exception as exc:  # noqa: BLE001 - every caller must get an answer
            if not _is_unavailable(exc) and isinstance(exc, DBAPIError) and not await reachable(self._engine):
                exc = StorageUnavailable(f"database unreachable: {type(exc.orig).__name__}")
            if _is_unavailable(exc) or len(batch) == 1:
                self._fail(batch, exc)
                return
            log.warning("batch of %d failed (%s); retrying its units one by one", len(batch), exc)
            for item in batch:
                try:
                    (result,) = await self._transaction([item[0]])
                except Exception as one_exc:  # noqa: BLE001 - isolates the faulty unit
                    self._fail([item], one_exc)
                else:
                    if not item[1].done():
                        item[1].set_result(result)
            return
        for (_, fut), result in zip(batch, results, strict=True):
            if not fut.done():
                fut.set_result(result)

    async def _transaction(self, units: list[Unit]) -> list[Any]:
        async with self._engine.begin() as conn:
            return [await unit(conn) for unit in units]

    @staticmethod
    def _fail(batch: list[tuple[Unit, asyncio.Future[Any]]], exc: Exception) -> None:
        if _is_unavailable(exc):
            log.error("storage unavailable: %s", exc)
            err: Exception = StorageUnavailable()
            err.__cause__ = exc
        else:
            err = exc
        for _, fut in batch:
            if not fut.done():
                fut.set_exception(err)
