"""`SqlConnectorStore` and `SqlPriceStore` on every backend (SQLite files and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from omnirelay.domain.connectors import SmppConnector, SmsRoute
from omnirelay.domain.prices import Price
from omnirelay.store.connectors import SqlConnectorStore
from omnirelay.store.prices import SqlPriceStore
from omnirelay.store.writer import Writer

NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def test_connectors_and_routes_round_trip(engine: AsyncEngine, writer: Writer):
    store = SqlConnectorStore(engine, writer)
    full = SmppConnector(
        "b", "smsc.example", 2776, "gw", "pw", "VMA", True, 25.5, 7, 45.0, 3.0, 0.5, 30.0, 2, 3
    )
    minimal = SmppConnector("a", "127.0.0.1", 2775, "gw2", "")
    assert await store.add_connector(full, NOW) is True
    assert await store.add_connector(minimal, NOW) is True
    assert await store.add_connector(minimal, NOW) is False
    assert await store.connectors() == [minimal, full]
    changed = SmppConnector("a", "127.0.0.2", 2775, "gw2", "new")
    assert await store.replace_connector(changed) is True
    assert await store.replace_connector(SmppConnector("zz", "h", 1, "s", "")) is False
    assert (await store.connectors())[0] == changed
    await store.set_route(SmsRoute("", "a"))
    await store.set_route(SmsRoute("41", "a"))
    await store.set_route(SmsRoute("41", "b"))  # replaces
    assert await store.routes() == [SmsRoute("", "a"), SmsRoute("41", "b")]
    assert await store.delete_route("41") is True
    assert await store.delete_route("41") is False
    assert await store.delete_connector("b") is True
    assert await store.delete_connector("b") is False
    assert [c.name for c in await store.connectors()] == ["a"]


async def test_prices_round_trip(engine: AsyncEngine, writer: Writer):
    store = SqlPriceStore(engine, writer)
    await store.set_price(Price("SMS", "CH", 0.05, "CHF"))
    await store.set_price(Price("SMS", "", 0.07, "EUR"))
    await store.set_price(Price("SMS", "CH", 0.06, "CHF"))  # replaces
    assert await store.prices() == [Price("SMS", "", 0.07, "EUR"), Price("SMS", "CH", 0.06, "CHF")]
    assert await store.delete_price("SMS", "CH") is True
    assert await store.delete_price("SMS", "CH") is False
    assert await store.prices() == [Price("SMS", "", 0.07, "EUR")]
