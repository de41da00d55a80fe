"""Cluster membership in the `nodes` table (docs/architecture.md#cluster-membership): every time is
the database's, so nodes whose clocks disagree agree on who is live."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from omnirelay.domain.nodes import Node
from omnirelay.domain.times import from_ms
from omnirelay.store.claims import db_now_ms
from omnirelay.store.engine import conflict_insert, reading
from omnirelay.store.tables import nodes
from omnirelay.store.writer import Writer

_N = nodes.c


class SqlNodeStore:
    def __init__(self, engine: AsyncEngine, writer: Writer) -> None:
        self._engine = engine
        self._writer = writer
        self._pg = engine.dialect.name == "postgresql"

    async def beat(self, node_id: str, host: str, pid: int, version: str) -> None:
        now = db_now_ms(pg=self._pg)
        insert = conflict_insert(nodes, pg=self._pg).values(
            node_id=node_id, host=host, pid=pid, version=version, started_at=now, heartbeat_at=now
        )
        # a node id given again (OMNIRELAY_NODE_ID kept across restarts) starts again
        stmt = insert.on_conflict_do_update(
            index_elements=[_N.node_id],
            set_={
                "heartbeat_at": insert.excluded.heartbeat_at,
                "host": insert.excluded.host,
                "pid": insert.excluded.pid,
                "version": insert.excluded.version,
                "stopped_at": None,
                # (SET reads the row as it was) a start after a stop or in another process
                "started_at": case(
                    (
                        or_(_N.stopped_at.is_not(None), _N.pid != insert.excluded.pid),
                        insert.excluded.started_at,
                    ),
                    else_=_N.started_at,
                ),
            },
        )

        async def unit(conn: AsyncConnection) -> None:
            await conn.execute(stmt)

        await self._writer.run(unit)

    async def stopped(self, node_id: str) -> None:
        stmt = update(nodes).where(_N.node_id == node_id).values(stopped_at=db_now_ms(pg=self._pg))

        async def unit(conn: AsyncConnection) -> None:
            await conn.execute(stmt)

        await self._writer.run(unit)

    async def members(self) -> tuple[datetime, list[Node]]:
        async with reading(self._engine) as conn:
            now = (await conn.execute(select(db_now_ms(pg=self._pg)))).scalar_one()
            rows = (await conn.execute(select(nodes).order_by(_N.started_at.desc(), _N.node_id))).all()
        return from_ms(int(now)), [
            Node(
                node_id=r.node_id,
                host=r.host,
                pid=r.pid,
                version=r.version,
                started_at=from_ms(r.started_at),
                heartbeat_at=from_ms(r.heartbeat_at),
                stopped_at=from_ms(r.stopped_at) if r.stopped_at is not None else None,
            )
            for r in rows
        ]

    async def forget(self, older_than_s: float) -> int:
        cutoff = db_now_ms(pg=self._pg) - int(older_than_s * 1000)
        stmt = delete(nodes).where(or_(_N.heartbeat_at < cutoff, _N.stopped_at < cutoff))

        async def unit(conn: AsyncConnection) -> int:
            return int((await conn.execute(stmt)).rowcount)

        return await self._writer.run(unit)
