"""Cluster membership (docs/architecture.md#cluster-membership) on SQLite and PostgreSQL: heartbeats
are written and judged in the database's clock."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from omnirelay.domain.nodes import NodeState
from omnirelay.services.membership import members
from omnirelay.store.nodes import SqlNodeStore
from omnirelay.store.tables import nodes
from omnirelay.store.writer import Writer


async def _age(engine: AsyncEngine, node_id: str, seconds: float) -> None:
    """Move a node's heartbeat (and start) back: a node that stopped beating that long ago."""
    ms = int(seconds * 1000)
    async with engine.begin() as conn:
        await conn.execute(
            update(nodes)
            .where(nodes.c.node_id == node_id)
            .values(heartbeat_at=nodes.c.heartbeat_at - ms, started_at=nodes.c.started_at - ms)
        )


async def states(store: SqlNodeStore, stale_s: float = 10.0) -> dict[str, NodeState]:
    listed, _ = await members(store, stale_s)
    return {n.node_id: state for n, state in listed}


async def test_a_node_is_live_while_its_heartbeat_is_fresh_by_the_database_clock(
    engine: AsyncEngine, writer: Writer
) -> None:
    store = SqlNodeStore(engine, writer)
    await store.beat("a", "host-a", 11, "0.1.0")
    await store.beat("b", "host-b", 12, "0.1.0")
    assert await states(store) == {"a": NodeState.LIVE, "b": NodeState.LIVE}
    await _age(engine, "b", 11)  # b's last beat was 11 s ago: past the stale period
    assert await states(store) == {"a": NodeState.LIVE, "b": NodeState.STALE}
    assert await states(store, stale_s=12) == {"a": NodeState.LIVE, "b": NodeState.LIVE}
    listed, live = await members(store, 10.0)
    assert live == 1
    (b,) = [n for n, _ in listed if n.node_id == "b"]
    assert (b.host, b.pid, b.version, b.stopped_at) == ("host-b", 12, "0.1.0", None)
    await store.beat("b", "host-b", 12, "0.1.0")  # b beats again
    assert (await states(store))["b"] is NodeState.LIVE


async def test_a_stopped_node_is_listed_stopped_and_a_restart_starts_it_again(
    engine: AsyncEngine, writer: Writer
) -> None:
    store = SqlNodeStore(engine, writer)
    await store.beat("a", "host", 11, "0.1.0")
    await _age(engine, "a", 5)
    _, [before] = await store.members()
    await store.beat("a", "host", 11, "0.1.0")  # the same process: its start stays
    _, [same] = await store.members()
    assert same.started_at == before.started_at and same.heartbeat_at > before.heartbeat_at
    await store.stopped("a")
    assert await states(store) == {"a": NodeState.STOPPED}
    await store.beat("a", "host", 11, "0.1.0")  # started again with the same node id
    _, [again] = await store.members()
    assert again.stopped_at is None and again.started_at > before.started_at
    assert await states(store) == {"a": NodeState.LIVE}
    await _age(engine, "a", 60)
    await store.beat("b", "host", 13, "0.1.0")  # another process under an id given again
    await store.beat("a", "host", 14, "0.1.0")
    _, listed = await store.members()
    assert {n.node_id: n.pid for n in listed} == {"a": 14, "b": 13}
    assert next(n for n in listed if n.node_id == "a").started_at > again.started_at


async def test_nodes_silent_for_long_are_forgotten(engine: AsyncEngine, writer: Writer) -> None:
    store = SqlNodeStore(engine, writer)
    for node_id in ("old", "stopped", "live"):
        await store.beat(node_id, "host", 1, "0.1.0")
    await store.stopped("stopped")
    await _age(engine, "old", 3600)
    assert await store.forget(older_than_s=600) == 1
    assert set(await states(store)) == {"stopped", "live"}
