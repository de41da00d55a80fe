"""Price list lookups and report prices, connector rules, the operator token guard, and applying
connector changes only when they change (pure and in-memory; no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from omnirelay.domain.connectors import SmppConnector, SmsRoute, check_prefix
from omnirelay.domain.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from omnirelay.domain.failover import PlannedStep
from omnirelay.domain.messages import AddressKind, Channel, SmsContent
from omnirelay.domain.prices import FREE, Price, by_country, index, pick
from omnirelay.domain.statuses import DELIVERED_TO_HANDSET, REJECTED_DESTINATION, UNDELIVERABLE_NOT_DELIVERED
from omnirelay.services.connectors import SmsConnectors
from omnirelay.services.operator import OperatorGuard
from omnirelay.services.prices import PriceBook, destination_country
from omnirelay.services.reports import price_json, step_price
from tests.doubles import FakeClock

PRICES = index(
    [
        Price("SMS", "CH", 0.05, "CHF"),
        Price("SMS", "", 0.07, "EUR"),
        Price("FACEBOOK", "", 0.001, "EUR"),
    ]
)


def test_pick_prefers_the_country_then_the_channel_default_then_zero():
    assert pick(PRICES, "SMS", "CH") == Price("SMS", "CH", 0.05, "CHF")
    assert pick(PRICES, "SMS", "DE") == Price("SMS", "", 0.07, "EUR")
    assert pick(PRICES, "SMS", None) == Price("SMS", "", 0.07, "EUR")
    assert pick(index([]), "SMS", "CH") == FREE
    assert price_json(3) == {"pricePerMessage": 0.0, "currency": "EUR"}


def test_price_check_normalises_and_rejects():
    assert Price("sms", "ch", 0.1, "chf").check() == Price("SMS", "CH", 0.1, "CHF")
    for bad, field in (
        (Price("FAX", "", 1, "EUR"), "channel"),
        (Price("SMS", "CHE", 1, "EUR"), "country"),
        (Price("SMS", "", -1, "EUR"), "pricePerMessage"),
        (Price("SMS", "", float("nan"), "EUR"), "pricePerMessage"),
        (Price("SMS", "", 1, "EU"), "currency"),
    ):
        with pytest.raises(ValidationFailed) as caught:
            bad.check()
        assert caught.value.field == field


class StaticPrices:
    def for_destination(self, channel: str, to: str, to_kind: AddressKind = AddressKind.PHONE) -> Price:
        return pick(PRICES, channel, destination_country(to, to_kind))


def step(channel: Channel, to: str, kind: AddressKind = AddressKind.PHONE) -> PlannedStep:
    return PlannedStep(channel, "InfoSMS", to, kind, 60, sms=SmsContent("x"))


def test_report_price_uses_the_destination_country_and_channel():
    prices = StaticPrices()
    assert (
        step_price(step(Channel.SMS, "41793026727"), DELIVERED_TO_HANDSET, prices).price_per_message == 0.05
    )
    assert (
        step_price(step(Channel.SMS, "4915112345678"), UNDELIVERABLE_NOT_DELIVERED, prices).currency == "EUR"
    )
    user_key = step(Channel.FACEBOOK, "9c29bd43-054b-4cfe-a1d4-0b37812b4ed3", AddressKind.USER_KEY)
    assert step_price(user_key, DELIVERED_TO_HANDSET, prices).price_per_message == 0.001
    # nothing was sent for a REJECTED status: 0, in the listed currency
    assert step_price(step(Channel.SMS, "41793026727"), REJECTED_DESTINATION, prices) == Price(
        "SMS", "CH", 0.0, "CHF"
    )
    assert step_price(step(Channel.SMS, "41793026727"), DELIVERED_TO_HANDSET, None) == FREE
    assert destination_country("+41 79", AddressKind.PHONE) is None
    assert destination_country("41793026727", AddressKind.USER_KEY) is None
    assert destination_country("+41793026727") == "CH"


class InMemoryPriceStore:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Price] = {}
        self.reads = 0

    async def prices(self) -> list[Price]:
        self.reads += 1
        return sorted(self.rows.values(), key=lambda p: (p.channel, p.country))

    async def set_price(self, price: Price) -> None:
        self.rows[(price.channel, price.country)] = price

    async def delete_price(self, channel: str, country: str) -> bool:
        return self.rows.pop((channel, country), None) is not None


async def test_price_book_answers_from_memory_and_reloads_on_change():
    store = InMemoryPriceStore()
    book = PriceBook(store)
    await book.load()
    await book.set("sms", "", 0.07, "eur")
    reads = store.reads
    for _ in range(100):
        assert book.price("SMS", "CH") == Price("SMS", "", 0.07, "EUR")
    assert store.reads == reads  # lookups never read the store
    await book.set("SMS", "CH", 0.05, "CHF")
    assert book.for_destination("SMS", "41793026727") == Price("SMS", "CH", 0.05, "CHF")
    await book.delete("sms", "ch")
    assert book.price("SMS", "CH").price_per_message == 0.07
    with pytest.raises(NotFound):
        await book.delete("SMS", "CH")


def test_operator_guard():
    guard = OperatorGuard("operator-secret-token")
    guard.check("Bearer operator-secret-token")
    guard.check("bearer   operator-secret-token ")
    for header in (
        None,
        "",
        "Bearer",
        "Bearer wrong",
        "Basic operator-secret-token",
        "operator-secret-token",
    ):
        with pytest.raises(Unauthorized):
            guard.check(header)
    empty = OperatorGuard("")
    for header in ("Bearer", "Bearer ", None):
        with pytest.raises(Unauthorized):
            empty.check(header)


def test_connector_rules():
    ok = SmppConnector("smsc-1", "127.0.0.1", 2775, "gw", "pw")
    assert ok.check() is ok
    assert "pw" not in repr(ok)
    assert check_prefix("+41") == "41" and check_prefix("default") == "" and check_prefix("") == ""
    with pytest.raises(ValidationFailed):
        check_prefix("41a")


class InMemoryConnectorStore:
    def __init__(self) -> None:
        self.items: dict[str, SmppConnector] = {}
        self.route_map: dict[str, SmsRoute] = {}

    async def connectors(self) -> list[SmppConnector]:
        return [self.items[k] for k in sorted(self.items)]

    async def routes(self) -> list[SmsRoute]:
        return [self.route_map[k] for k in sorted(self.route_map)]

    async def add_connector(self, connector: SmppConnector, now: datetime) -> bool:
        if connector.name in self.items:
            return False
        self.items[connector.name] = connector
        return True

    async def replace_connector(self, connector: SmppConnector) -> bool:
        if connector.name not in self.items:
            return False
        self.items[connector.name] = connector
        return True

    async def delete_connector(self, name: str) -> bool:
        return self.items.pop(name, None) is not None

    async def set_route(self, route: SmsRoute) -> None:
        self.route_map[route.prefix] = route

    async def delete_route(self, prefix: str) -> bool:
        return self.route_map.pop(prefix, None) is not None


async def test_connector_changes_are_applied_once_each():
    applied: list[tuple[list[SmppConnector], list[SmsRoute]]] = []

    async def apply(connectors: list[SmppConnector], routes: list[SmsRoute]) -> None:
        applied.append((connectors, routes))

    store = InMemoryConnectorStore()
    service = SmsConnectors(store, FakeClock(datetime(2026, 1, 1, tzinfo=UTC)), apply)
    assert await service.reload() is True and applied[-1] == ([], [])
    assert await service.reload() is False  # nothing changed: no rebuild
    one = await service.add(SmppConnector("a", "127.0.0.1", 2775, "gw", "pw"))
    assert applied[-1] == ([one], [])
    with pytest.raises(Conflict):
        await service.add(SmppConnector("a", "127.0.0.1", 2775, "gw", "pw"))
    await service.set_route("default", "a")
    assert applied[-1][1] == [SmsRoute("", "a")]
    with pytest.raises(Conflict):
        await service.remove("a")
    updated = await service.update("a", {"password": "new"})
    assert updated.password == "new" and applied[-1][0] == [updated]
    with pytest.raises(ValidationFailed):
        await service.update("a", {"name": "b"})
    with pytest.raises(ValidationFailed):
        await service.update("a", {"port": 0})
    count = len(applied)
    store.items["a"] = SmppConnector("a", "10.0.0.1", 2775, "gw", "new")  # changed elsewhere (CLI, a peer)
    assert await service.reload() is True and len(applied) == count + 1
    await service.remove_route("")
    await service.remove("a")
    assert applied[-1] == ([], [])
    with pytest.raises(NotFound):
        await service.remove("a")


async def test_routes_to_unknown_connectors_are_ignored_not_fatal():
    applied: list[list[SmsRoute]] = []

    async def apply(connectors: list[SmppConnector], routes: list[SmsRoute]) -> None:
        applied.append(routes)

    store = InMemoryConnectorStore()
    store.items["a"] = SmppConnector("a", "127.0.0.1", 2775, "gw", "pw")
    store.route_map = {"": SmsRoute("", "a"), "49": SmsRoute("49", "gone")}  # e.g. a peer removed "gone"
    service = SmsConnectors(store, FakeClock(datetime(2026, 1, 1, tzinfo=UTC)), apply)
    assert await service.reload() is True
    assert applied == [[SmsRoute("", "a")]]


def test_only_channels_with_country_prices_need_the_destination_country():
    assert by_country(PRICES) == {"SMS"}
    assert by_country(index([Price("SMS", "", 0.07, "EUR")])) == frozenset()
