"""SMPP bind slots (docs/architecture.md#smpp-binds): a connector has `binds` slots for the whole
cluster; a node binds it only while it holds one, leased in the database's time like every claim."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from sqlalchemy import ColumnElement, and_, delete, literal, not_, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.types import BigInteger

from omnirelay.store.claims import db_now_ms
from omnirelay.store.engine import conflict_insert
from omnirelay.store.tables import bind_slots
from omnirelay.store.writer import Writer

_S = bind_slots.c


class SqlBindSlots:
    def __init__(self, engine: AsyncEngine, writer: Writer) -> None:
        self._writer = writer
        self._pg = engine.dialect.name == "postgresql"

    def _lease_end(self, lease_s: float) -> ColumnElement[int]:
        return db_now_ms(pg=self._pg) + literal(int(lease_s * 1000), BigInteger)

    async def renew(self, node_id: str, lease_s: float) -> dict[str, int]:
        """Extend the leases of every slot this node holds; connector -> slot of those it still
        holds (a slot whose lease ran out and was taken by another node is not among them)."""
        stmt = (
            update(bind_slots)
            .where(_S.holder == node_id, _S.lease_until > db_now_ms(pg=self._pg))
            .values(lease_until=self._lease_end(lease_s))
            .returning(_S.connector, _S.slot)
        )

        async def unit(conn: AsyncConnection) -> dict[str, int]:
            return {r.connector: r.slot for r in (await conn.execute(stmt)).all()}

        return await self._writer.run(unit)

    async def take(self, node_id: str, connector: str, binds: int, lease_s: float) -> int | None:
        """Take a free slot of `connector` (none held, or its lease ran out), if one of its `binds`
        is free; the slot taken, or None."""
        now = db_now_ms(pg=self._pg)
        pick = (
            select(_S.slot)
            .where(
                _S.connector == connector,
                _S.slot < binds,
                or_(_S.holder.is_(None), _S.lease_until.is_(None), _S.lease_until <= now),
            )
            .order_by(_S.slot)
            .limit(1)
        )
        if self._pg:
            pick = pick.with_for_update(skip_locked=True)
        stmt = (
            update(bind_slots)
            .where(_S.connector == connector, _S.slot == pick.scalar_subquery())
            .values(holder=node_id, lease_until=self._lease_end(lease_s))
            .returning(_S.slot)
        )
        slots = (
            conflict_insert(bind_slots, pg=self._pg)
            .values([{"connector": connector, "slot": i} for i in range(binds)])
            .on_conflict_do_nothing()
        )

        async def unit(conn: AsyncConnection) -> int | None:
            await conn.execute(slots)  # the connector's slots exist once it is known
            row = (await conn.execute(stmt)).first()
            return None if row is None else int(row.slot)

        return await self._writer.run(unit)

    async def release(self, node_id: str, connectors: Collection[str] | None = None) -> None:
        """Give up this node's slots (of these connectors; all when None). Only after their binds
        are closed: another node may bind as soon as the slot is free."""
        cond = [_S.holder == node_id]
        if connectors is not None:
            cond.append(_S.connector.in_(list(connectors)))
        stmt = update(bind_slots).where(*cond).values(holder=None, lease_until=None)

        async def unit(conn: AsyncConnection) -> None:
            await conn.execute(stmt)

        await self._writer.run(unit)

    async def tidy(self, binds: Mapping[str, int]) -> None:
        """Delete the free slots no connector needs any more (a connector removed, or fewer binds);
        one still held is left to its holder, which gives it up when it sees the change."""
        now = db_now_ms(pg=self._pg)
        free = or_(_S.holder.is_(None), _S.lease_until.is_(None), _S.lease_until <= now)
        wanted = or_(*(and_(_S.connector == c, _S.slot < n) for c, n in binds.items())) if binds else None
        stmt = delete(bind_slots).where(free, not_(wanted) if wanted is not None else true())

        async def unit(conn: AsyncConnection) -> None:
            await conn.execute(stmt)

        await self._writer.run(unit)
