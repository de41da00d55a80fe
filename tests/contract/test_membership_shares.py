"""Cluster-wide budgets (docs/architecture.md#cluster-wide-budgets): each node keeps to 1/live of
every budget, and a joining node takes its share only once the others have taken their smaller one,
so that the shares never add up to more than one."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from omnirelay.domain.nodes import Node
from omnirelay.services.membership import Membership
from omnirelay.store.nodes import SqlNodeStore
from omnirelay.store.writer import Writer
from tests.waiting import until


class WatchedStore(SqlNodeStore):
    """The real store, counting how often the members are read."""

    reads = 0

    async def members(self) -> tuple[datetime, list[Node]]:
        self.reads += 1
        return await super().members()


def node(store: SqlNodeStore, name: str) -> Membership:
    return Membership(store, node_id=name, host="host", pid=1, version="0", heartbeat_s=0.05, stale_s=10)


async def test_shares_follow_the_live_nodes_and_never_add_up_to_more_than_one(
    engine: AsyncEngine, writer: Writer
) -> None:
    store = WatchedStore(engine, writer)
    a, b = node(store, "a"), node(store, "b")
    a_shares: list[float] = []
    await a.join()  # alone: the whole budget at once
    a.on_share(a_shares.append)
    assert a_shares == [1.0]
    joining = asyncio.create_task(b.join())
    reads = store.reads
    await until(lambda: store.reads >= reads + 3, what="b looking at the members again and again")
    assert not joining.done()  # a has not beaten since b joined: a still uses the whole budget
    await a.beat()  # a sees b: half
    assert a_shares == [1.0, 0.5]
    await joining
    b_shares: list[float] = []
    b.on_share(b_shares.append)
    assert b_shares == [0.5]
    await b.stop(grace_s=1)  # b leaves: a takes the whole budget again at its next beat
    await a.beat()
    assert a_shares == [1.0, 0.5, 1.0]
