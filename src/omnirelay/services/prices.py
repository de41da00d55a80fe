"""The price list (docs/api.md#prices) as the operator manages it and as reports read it.

Reports are rendered on the hot path (every final transition), so the price list is kept in
memory: loaded at start, reloaded at once after a change made through this service (operator API,
CLI in-process) and every `poll_s` otherwise, so that a change made elsewhere (the CLI against a
running server, another node) shows within that period. A lookup never touches the database.
"""

from __future__ import annotations

import asyncio
import logging

from omnirelay.domain.errors import NotFound
from omnirelay.domain.messages import AddressKind
from omnirelay.domain.phones import region
from omnirelay.domain.prices import Price, PriceKey, by_country, check_channel, check_country, index, pick
from omnirelay.ports import PriceStore

log = logging.getLogger(__name__)


def destination_country(to: str, to_kind: AddressKind = AddressKind.PHONE) -> str | None:
    """The ISO country of a phone-number destination; None for user keys and unknown numbers."""
    if to_kind is not AddressKind.PHONE:
        return None
    digits = to.strip().removeprefix("+")
    return region(digits) if digits.isascii() and digits.isdigit() else None


class PriceBook:
    """Implements the `PriceList` port from memory; manages the stored list."""

    def __init__(self, store: PriceStore) -> None:
        self._store = store
        self._index: dict[PriceKey, Price] = {}
        self._by_country: frozenset[str] = frozenset()
        self._lock = asyncio.Lock()

    def price(self, channel: str, country: str | None) -> Price:
        return pick(self._index, channel, country)

    def for_destination(self, channel: str, to: str, to_kind: AddressKind = AddressKind.PHONE) -> Price:
        # the country only matters when the channel has a country price: telling it from a phone
        # number is a `phonenumbers` parse, and every final report asks
        country = destination_country(to, to_kind) if channel in self._by_country else None
        return self.price(channel, country)

    async def load(self) -> None:
        async with self._lock:
            self._index = index(await self._store.prices())
            self._by_country = by_country(self._index)

    async def run(self, poll_s: float) -> None:
        while True:
            await asyncio.sleep(poll_s)
            try:
                await self.load()
            except Exception:
                log.exception("reloading the price list failed; keeping the previous one")

    async def list_prices(self) -> list[Price]:
        return await self._store.prices()

    async def set(self, channel: str, country: str, price_per_message: float, currency: str) -> Price:
        price = Price(channel, country, price_per_message, currency).check()
        await self._store.set_price(price)
        await self.load()
        return price

    async def delete(self, channel: str, country: str) -> None:
        channel, country = check_channel(channel), check_country(country)
        if not await self._store.delete_price(channel, country):
            raise NotFound("Price not found")
        await self.load()
