"""The price list in `prices` (docs/api.md#prices)."""

from __future__ import annotations

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from omnirelay.domain.prices import Price
from omnirelay.store.engine import reading
from omnirelay.store.tables import prices
from omnirelay.store.writer import Writer


class SqlPriceStore:
    def __init__(self, engine: AsyncEngine, writer: Writer) -> None:
        self._engine = engine
        self._writer = writer

    async def prices(self) -> list[Price]:
        async with reading(self._engine) as conn:
            rows = (await conn.execute(select(prices).order_by(prices.c.channel, prices.c.country))).all()
        return [Price(r.channel, r.country, r.price_per_message, r.currency) for r in rows]

    async def set_price(self, price: Price) -> None:
        async def unit(conn: AsyncConnection) -> None:
            await conn.execute(
                delete(prices).where(prices.c.channel == price.channel, prices.c.country == price.country)
            )
            await conn.execute(
                insert(prices).values(
                    channel=price.channel,
                    country=price.country,
                    price_per_message=price.price_per_message,
                    currency=price.currency,
                )
            )

        await self._writer.run(unit)

    async def delete_price(self, channel: str, country: str) -> bool:
        async def unit(conn: AsyncConnection) -> bool:
            res = await conn.execute(
                delete(prices).where(prices.c.channel == channel, prices.c.country == country)
            )
            return bool(res.rowcount)

        return bool(await self._writer.run(unit))
