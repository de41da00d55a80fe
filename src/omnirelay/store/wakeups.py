"""Wake-ups between nodes on PostgreSQL (docs/architecture.md#wake-ups): a node that commits work
for others says so with `NOTIFY`, and every node `LISTEN`s, so that a new message is claimed at
once by whichever node can send it, not at its next poll.

One connection per node, held while the node runs, both listens and notifies. Notifications are
coalesced: however many commits happen meanwhile, one NOTIFY follows the one under way. They are
only a hint: every node still polls (`OMNIRELAY_IDLE_POLL_S`), so a lost notification, or a node
that cannot listen, costs latency, never a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

CHANNEL = "omnirelay_work"


class PgWakeups:
    def __init__(self, engine: AsyncEngine, node_id: str, on_wake: Callable[[], None]) -> None:
        self._engine = engine
        self._node_id = node_id
        self._on_wake = on_wake
        self._pending = asyncio.Event()
        self._stopping = asyncio.Event()
        self.listening = asyncio.Event()  # set while the listener is registered

    def notify(self) -> None:
        """Tell the other nodes there is work (sent soon, coalesced)."""
        self._pending.set()

    def _heard(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload != self._node_id:  # not this node's own
            self._on_wake()

    async def run(self) -> None:
        self._stopping.clear()
        async with self._engine.connect() as conn:
            raw = await conn.get_raw_connection()
            pg: Any = raw.driver_connection  # asyncpg's connection: LISTEN needs it
            await pg.add_listener(CHANNEL, self._heard)
            self.listening.set()
            try:
                while not self._stopping.is_set():
                    stop = asyncio.ensure_future(self._stopping.wait())
                    work = asyncio.ensure_future(self._pending.wait())
                    await asyncio.wait({stop, work}, return_when=asyncio.FIRST_COMPLETED)
                    stop.cancel()
                    work.cancel()
                    if self._pending.is_set() and not self._stopping.is_set():
                        self._pending.clear()
                        await pg.execute("SELECT pg_notify($1, $2)", CHANNEL, self._node_id)
            finally:
                self.listening.clear()
                with contextlib.suppress(Exception):  # the connection may be gone already
                    await pg.remove_listener(CHANNEL, self._heard)

    async def stop(self, grace_s: float) -> None:
        self._stopping.set()
