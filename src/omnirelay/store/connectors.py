"""SMPP connectors and SMS routes in `smpp_connectors` and `sms_routes`
(docs/channels.md#routes-and-connectors).

The bind password is stored in clear because binding needs it; it never leaves this module
except inside an `SmppConnector`, whose repr hides it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from omnirelay.domain.connectors import SmppConnector, SmsRoute
from omnirelay.domain.times import to_ms
from omnirelay.store.engine import reading
from omnirelay.store.tables import smpp_connectors, sms_routes
from omnirelay.store.writer import Writer


def _connector(row: Any) -> SmppConnector:
    return SmppConnector(
        name=row.name,
        host=row.host,
        port=row.port,
        system_id=row.system_id,
        password=row.password,
        system_type=row.system_type,
        tls=bool(row.tls),
        throughput_per_s=row.throughput_per_s,
        window=row.window,
        enquire_link_s=row.enquire_link_s,
        response_timeout_s=row.response_timeout_s,
        reconnect_min_s=row.reconnect_min_s,
        reconnect_max_s=row.reconnect_max_s,
        dest_addr_ton=row.dest_addr_ton,
        dest_addr_npi=row.dest_addr_npi,
        binds=row.binds,
    )


def _values(c: SmppConnector) -> dict[str, Any]:
    return {
        "host": c.host,
        "port": c.port,
        "system_id": c.system_id,
        "password": c.password,
        "system_type": c.system_type,
        "tls": c.tls,
        "throughput_per_s": c.throughput_per_s,
        "window": c.window,
        "enquire_link_s": c.enquire_link_s,
        "response_timeout_s": c.response_timeout_s,
        "reconnect_min_s": c.reconnect_min_s,
        "reconnect_max_s": c.reconnect_max_s,
        "dest_addr_ton": c.dest_addr_ton,
        "dest_addr_npi": c.dest_addr_npi,
        "binds": c.binds,
    }


class SqlConnectorStore:
    def __init__(self, engine: AsyncEngine, writer: Writer) -> None:
        self._engine = engine
        self._writer = writer

    async def connectors(self) -> list[SmppConnector]:
        async with reading(self._engine) as conn:
            rows = (await conn.execute(select(smpp_connectors).order_by(smpp_connectors.c.name))).all()
        return [_connector(r) for r in rows]

    async def routes(self) -> list[SmsRoute]:
        async with reading(self._engine) as conn:
            rows = (await conn.execute(select(sms_routes).order_by(sms_routes.c.prefix))).all()
        return [SmsRoute(r.prefix, r.connector) for r in rows]

    async def add_connector(self, connector: SmppConnector, now: datetime) -> bool:
        async def unit(conn: AsyncConnection) -> bool:
            found = (
                await conn.execute(
                    select(smpp_connectors.c.name).where(smpp_connectors.c.name == connector.name)
                )
            ).first()
            if found is not None:
                return False
            await conn.execute(
                insert(smpp_connectors).values(
                    name=connector.name, created_at=to_ms(now), **_values(connector)
                )
            )
            return True

        return bool(await self._writer.run(unit))

    async def replace_connector(self, connector: SmppConnector) -> bool:
        async def unit(conn: AsyncConnection) -> bool:
            res = await conn.execute(
                update(smpp_connectors)
                .where(smpp_connectors.c.name == connector.name)
                .values(**_values(connector))
            )
            return bool(res.rowcount)

        return bool(await self._writer.run(unit))

    async def delete_connector(self, name: str) -> bool:
        async def unit(conn: AsyncConnection) -> bool:
            res = await conn.execute(delete(smpp_connectors).where(smpp_connectors.c.name == name))
            return bool(res.rowcount)

        return bool(await self._writer.run(unit))

    async def set_route(self, route: SmsRoute) -> None:
        async def unit(conn: AsyncConnection) -> None:
            await conn.execute(delete(sms_routes).where(sms_routes.c.prefix == route.prefix))
            await conn.execute(insert(sms_routes).values(prefix=route.prefix, connector=route.connector))

        await self._writer.run(unit)

    async def delete_route(self, prefix: str) -> bool:
        async def unit(conn: AsyncConnection) -> bool:
            res = await conn.execute(delete(sms_routes).where(sms_routes.c.prefix == prefix))
            return bool(res.rowcount)

        return bool(await self._writer.run(unit))
