"""Scenarios, with the one-default-per-account rule kept in the same transaction as the write.

Lookups on the send path (`get`, `default`) are cached for a few seconds, like applications
(`store.cache.ReadCache`): every OMNI send resolves a scenario, and scenarios change rarely.
Concurrent misses share one read (each OMNI request in flight read the default scenario again when
the entry expired: 64 reads at once every 5 s under load); a write made through this store drops
the cache, and a read that overlapped it is not remembered. Another node's write is seen within
the TTL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from omnirelay.domain.messages import Channel, Step, SuccessCriterion
from omnirelay.domain.scenarios import Scenario
from omnirelay.domain.times import to_ms
from omnirelay.store.cache import ReadCache
from omnirelay.store.engine import reading
from omnirelay.store.tables import scenarios
from omnirelay.store.writer import Writer

# Each step is [from, channel] or, with a criterion other than the default, [from, channel,
# criterion]: rows written before criteria existed read as DELIVERED, and a row whose steps all keep
# the default is written as before.
_flow = msgspec.json.Decoder(list[list[str]])


def _step(item: list[str]) -> Step:
    sender, channel, *rest = item
    criterion = SuccessCriterion(rest[0]) if rest else SuccessCriterion.DELIVERED
    return Step(Channel(channel), sender, criterion)


def scenario_of(row: Any) -> Scenario:
    flow = tuple(_step(item) for item in _flow.decode(row.flow))
    return Scenario(row.key, row.name, flow, bool(row.is_default))


def _encode_flow(flow: tuple[Step, ...]) -> str:
    return msgspec.json.encode(
        [
            [s.sender, s.channel.value]
            if s.criterion is SuccessCriterion.DELIVERED
            else [s.sender, s.channel.value, s.criterion.value]
            for s in flow
        ]
    ).decode()


class SqlScenarioStore:
    def __init__(self, engine: AsyncEngine, writer: Writer) -> None:
        self._engine = engine
        self._writer = writer
        self._reads = ReadCache(engine)

    async def _write(self, unit: Callable[[AsyncConnection], Awaitable[Any]]) -> Any:
        return await self._reads.writing(self._writer.run(unit))

    async def create(self, account_id: int, scenario: Scenario, now: datetime) -> Scenario:
        async def unit(conn: AsyncConnection) -> Scenario:
            count = (
                await conn.execute(select(func.count()).where(scenarios.c.account_id == account_id))
            ).scalar_one()
            is_default = scenario.is_default or count == 0  # the first scenario becomes the default
            if is_default:
                await self._clear_default(conn, account_id)
            await conn.execute(
                insert(scenarios).values(
                    key=scenario.key,
                    account_id=account_id,
                    name=scenario.name,
                    flow=_encode_flow(scenario.flow),
                    is_default=is_default,
                    created_at=to_ms(now),
                )
            )
            return Scenario(scenario.key, scenario.name, scenario.flow, is_default)

        result: Scenario = await self._write(unit)
        return result

    async def update(self, account_id: int, scenario: Scenario) -> bool:
        async def unit(conn: AsyncConnection) -> bool:
            if scenario.is_default:
                await self._clear_default(conn, account_id)
            res = await conn.execute(
                update(scenarios)
                .where(scenarios.c.key == scenario.key, scenarios.c.account_id == account_id)
                .values(name=scenario.name, flow=_encode_flow(scenario.flow), is_default=scenario.is_default)
            )
            return bool(res.rowcount)

        return bool(await self._write(unit))

    async def delete(self, account_id: int, key: str) -> bool:
        async def unit(conn: AsyncConnection) -> bool:
            res = await conn.execute(
                delete(scenarios).where(scenarios.c.key == key, scenarios.c.account_id == account_id)
            )
            return bool(res.rowcount)

        return bool(await self._write(unit))

    @staticmethod
    async def _clear_default(conn: AsyncConnection, account_id: int) -> None:
        await conn.execute(
            update(scenarios)
            .where(scenarios.c.account_id == account_id, scenarios.c.is_default.is_(True))
            .values(is_default=False)
        )

    async def get(self, account_id: int, key: str) -> Scenario | None:
        async def load(conn: AsyncConnection) -> Scenario | None:
            row = (
                await conn.execute(
                    select(scenarios).where(scenarios.c.key == key, scenarios.c.account_id == account_id)
                )
            ).first()
            return scenario_of(row) if row is not None else None

        return await self._reads.get((account_id, key), load)  # type: ignore[no-any-return]

    async def default(self, account_id: int) -> Scenario | None:
        async def load(conn: AsyncConnection) -> Scenario | None:
            row = (
                await conn.execute(
                    select(scenarios).where(
                        scenarios.c.account_id == account_id, scenarios.c.is_default.is_(True)
                    )
                )
            ).first()
            return scenario_of(row) if row is not None else None

        return await self._reads.get((account_id, None), load)  # type: ignore[no-any-return]

    async def list(self, account_id: int, is_default: bool | None, page: int, limit: int) -> list[Scenario]:
        stmt = select(scenarios).where(scenarios.c.account_id == account_id)
        if is_default is not None:
            stmt = stmt.where(scenarios.c.is_default.is_(is_default))
        stmt = stmt.order_by(scenarios.c.created_at, scenarios.c.key).limit(limit).offset(page * limit)
        async with reading(self._engine) as conn:
            rows = (await conn.execute(stmt)).all()
        return [scenario_of(r) for r in rows]
