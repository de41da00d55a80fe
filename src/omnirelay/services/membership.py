"""This node's membership of the cluster (docs/architecture.md#cluster-membership): it beats every
`heartbeat_s` while it runs, says so when it stops, lists the members in the database's clock, and
tells the budgets this node's share of them (docs/architecture.md#cluster-wide-budgets)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from omnirelay.domain.nodes import Node, NodeState
from omnirelay.ports import NodeStore
from omnirelay.services.rounds import run_rounds

log = logging.getLogger(__name__)

FORGET_AFTER_S = 7 * 86_400  # a node silent or stopped this long is no longer listed


class Membership:
    def __init__(
        self,
        store: NodeStore,
        *,
        node_id: str,
        host: str,
        pid: int,
        version: str,
        heartbeat_s: float,
        stale_s: float,
    ) -> None:
        self._store = store
        self.node_id = node_id
        self._identity = (node_id, host, pid, version)
        self._heartbeat_s = heartbeat_s
        self.stale_s = stale_s
        self._wake = asyncio.Event()
        self._stopping = False
        self.share = 1.0  # of every cluster-wide budget: 1 / the live nodes
        self._on_share: list[Callable[[float], None]] = []

    def on_share(self, apply: Callable[[float], None]) -> None:
        """Call `apply(share)` now and whenever this node's share of the budgets changes."""
        self._on_share.append(apply)
        apply(self.share)

    async def join(self) -> None:
        """The first heartbeat, before the node takes work; then, when other nodes are live, wait
        until each has beaten since (and so taken its smaller share) before taking this node's:
        the nodes' shares never add up to more than a whole budget."""
        await self._store.forget(FORGET_AFTER_S)
        await self._store.beat(*self._identity)
        # a node that never beats again drops out once STALE, so this ends within the stale period;
        # the bound is for a database that answers but whose nodes' rows never settle
        try:
            async with asyncio.timeout(2 * self.stale_s + self._heartbeat_s):
                while True:  # the others are other processes: their beats are read, not awaited
                    if not await self._others_behind():
                        break
                    await asyncio.sleep(self._heartbeat_s / 4)
        except TimeoutError:
            log.warning("joined without every live node having seen this one")
        await self._reshare()

    async def _others_behind(self) -> bool:
        """Whether a live node has not beaten since this one joined (and so uses a larger share)."""
        listed, _ = await self.members()
        mine = next(n for n, _ in listed if n.node_id == self.node_id)
        return any(
            state is NodeState.LIVE and n.node_id != self.node_id and n.heartbeat_at <= mine.started_at
            for n, state in listed
        )

    async def _reshare(self) -> None:
        _, live = await self.members()
        share = 1.0 / max(live, 1)
        if share != self.share:
            log.info("this node's share of the cluster-wide budgets: 1/%d", max(live, 1))
            self.share = share
            for apply in self._on_share:
                apply(share)

    async def run(self) -> None:
        self._stopping = False
        await run_rounds("membership", self._round, self._wake, self._heartbeat_s, lambda: self._stopping)

    async def _round(self) -> float:
        await self.beat()
        return self._heartbeat_s

    async def beat(self) -> None:
        """One heartbeat, and this node's share of the budgets read again."""
        await self._store.beat(*self._identity)
        await self._reshare()

    async def stop(self, grace_s: float) -> None:
        """Leave the cluster: listed as STOPPED, not STALE, once the node stopped on purpose."""
        self._stopping = True
        self._wake.set()
        try:
            await self._store.stopped(self.node_id)
        except Exception:  # the node stops anyway; it reads as STALE once its heartbeat is old
            log.warning("could not record this node's stop", exc_info=True)

    async def members(self) -> tuple[list[tuple[Node, NodeState]], int]:
        return await members(self._store, self.stale_s)


async def members(store: NodeStore, stale_s: float) -> tuple[list[tuple[Node, NodeState]], int]:
    """Every node recorded, with its state by the database's clock; and how many are live."""
    db_now, nodes = await store.members()
    listed = [(n, n.state(db_now, stale_s)) for n in nodes]
    return listed, sum(1 for _, state in listed if state is NodeState.LIVE)
