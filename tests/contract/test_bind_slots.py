"""SMPP bind slots (docs/architecture.md#smpp-binds) on SQLite and PostgreSQL: a connector's binds
are the cluster's total, at most one per node, leased in the database's clock; a bind is closed
before its slot is given up."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from omnirelay.domain.errors import StorageUnavailable
from omnirelay.services.binds import BindHolder
from omnirelay.store.binds import SqlBindSlots
from omnirelay.store.tables import bind_slots
from omnirelay.store.writer import Writer


class Node:
    """A BindHolder whose binds are recorded; at each change it looks in the database whether it
    still held the slot of each bind it closed (a slot given up: closed first, then freed) or not
    (a lease that ran out and was taken)."""

    def __init__(self, engine: AsyncEngine, slots: SqlBindSlots, name: str) -> None:
        self.engine = engine
        self.name = name
        self.bound: dict[str, int] = {}
        self.closed_while_held: list[str] = []
        self.closed_after_lost: list[str] = []
        self.holder = BindHolder(slots, node_id=name, heartbeat_s=0.05, lease_s=10, apply=self.apply)

    async def apply(self, held: Mapping[str, int]) -> None:
        closing = set(self.bound) - set(held)
        if closing:
            async with self.engine.connect() as conn:
                rows = await conn.execute(
                    select(bind_slots.c.connector).where(bind_slots.c.holder == self.name)
                )
                still = {r.connector for r in rows}
            self.closed_while_held.extend(sorted(closing & still))
            self.closed_after_lost.extend(sorted(closing - still))
        self.bound = dict(held)


async def _expire(engine: AsyncEngine, holder: str) -> None:
    """A holder that died: its leases ran out (by the database's clock) without a renewal."""
    async with engine.begin() as conn:
        await conn.execute(
            update(bind_slots)
            .where(bind_slots.c.holder == holder)
            .values(lease_until=bind_slots.c.lease_until - 60_000)
        )


async def test_one_bind_for_the_cluster_is_held_by_one_node_and_taken_over_when_it_dies(
    engine: AsyncEngine, writer: Writer
) -> None:
    slots = SqlBindSlots(engine, writer)
    a, b = Node(engine, slots, "a"), Node(engine, slots, "b")
    for n in (a, b):
        n.holder.configure({"smsc1": 1})
    await a.holder.hold()
    await b.holder.hold()
    assert (a.bound, b.bound) == ({"smsc1": 1}, {})
    await b.holder.hold()
    await a.holder.hold()  # renewed: still a's
    assert (a.bound, b.bound) == ({"smsc1": 1}, {})
    await _expire(engine, "a")  # a stopped renewing
    await b.holder.hold()
    assert b.bound == {"smsc1": 1}
    await a.holder.hold()  # a is back: it finds its slot taken and closes its bind
    assert a.bound == {} and a.closed_after_lost == ["smsc1"]


async def test_binds_are_spread_one_per_node_and_given_up_after_closing(
    engine: AsyncEngine, writer: Writer
) -> None:
    slots = SqlBindSlots(engine, writer)
    a, b, c = (Node(engine, slots, name) for name in "abc")
    for n in (a, b, c):
        n.holder.configure({"smsc1": 2, "smsc2": 1})
        await n.holder.hold()
    assert [n.bound for n in (a, b, c)] == [{"smsc1": 2, "smsc2": 1}, {"smsc1": 2}, {}]
    for n in (a, b, c):  # smsc1 down to one bind, smsc2 removed
        n.holder.configure({"smsc1": 1})
        await n.holder.hold()
    assert [n.bound for n in (a, b, c)] == [{"smsc1": 1}, {}, {}]
    assert (a.closed_while_held, b.closed_while_held) == (["smsc2"], ["smsc1"])
    assert a.closed_after_lost == b.closed_after_lost == []
    async with engine.connect() as conn:
        left = (await conn.execute(select(bind_slots.c.connector, bind_slots.c.slot))).all()
    assert [tuple(r) for r in left] == [("smsc1", 0)]  # the slots no connector needs are gone
    await a.holder.stop(grace_s=1)  # closed, then freed at once: another node binds at its next round
    assert a.bound == {} and a.closed_while_held == ["smsc2", "smsc1"]
    await c.holder.hold()
    assert c.bound == {"smsc1": 1}


class Unreachable(SqlBindSlots):
    """The real store until `down` is set: then every call fails, as with the database cut off."""

    down = False

    async def renew(self, node_id: str, lease_s: float) -> dict[str, int]:
        if self.down:
            raise StorageUnavailable()
        return await super().renew(node_id, lease_s)


async def test_a_holder_that_cannot_renew_for_half_a_lease_closes_its_binds(
    engine: AsyncEngine, writer: Writer
) -> None:
    slots = Unreachable(engine, writer)
    now = [0.0]
    a = Node(engine, slots, "a")
    a.holder = BindHolder(
        slots, node_id="a", heartbeat_s=1, lease_s=10, apply=a.apply, monotonic=lambda: now[0]
    )
    a.holder.configure({"smsc1": 1})
    await a.holder.hold()
    slots.down = True
    now[0] = 4.0  # renewed 4 s ago: the lease (10 s) is safe, the bind stays
    with pytest.raises(StorageUnavailable):
        await a.holder.hold()
    assert a.bound == {"smsc1": 1}
    now[0] = 5.5  # past half the lease: closed before the lease can run out under it
    with pytest.raises(StorageUnavailable):
        await a.holder.hold()
    assert a.bound == {}
    slots.down = False
    await a.holder.hold()  # the database is back and the slot still a's: bound again
    assert a.bound == {"smsc1": 1}
