"""The price list (docs/api.md#prices): a price per message for a channel and destination country.

An entry is (channel, country, price per message, currency); country is an ISO 3166 region code
such as "CH", or "" for the channel's default. A lookup tries (channel, country), then
(channel, ""), then falls back to 0 EUR. For SMS "per message" means per segment: a report's
`price.pricePerMessage` is the segment price and the message costs `pricePerMessage ×
messageCount` (Infobip's convention: the report carries the unit price, not a total).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from omnirelay.domain.errors import ValidationFailed
from omnirelay.domain.messages import Channel

DEFAULT_CURRENCY = "EUR"
MAX_PRICE = 1_000_000.0


@dataclass(frozen=True, slots=True)
class Price:
    channel: str
    country: str  # ISO region ("CH"), or "" for the channel's default
    price_per_message: float
    currency: str

    def check(self) -> Price:
        check_channel(self.channel)
        check_country(self.country)
        if not math.isfinite(self.price_per_message) or not 0 <= self.price_per_message <= MAX_PRICE:
            raise ValidationFailed(
                field="pricePerMessage", problem=f"must be a number from 0 to {MAX_PRICE:g}"
            )
        if not (len(self.currency) == 3 and self.currency.isascii() and self.currency.isalpha()):
            raise ValidationFailed(field="currency", problem="must be a 3-letter ISO 4217 code such as EUR")
        return Price(
            self.channel.upper(), self.country.upper(), self.price_per_message, self.currency.upper()
        )


FREE = Price("", "", 0.0, DEFAULT_CURRENCY)

PriceKey = tuple[str, str]


def check_channel(channel: str) -> str:
    if channel.upper() not in Channel.__members__:
        raise ValidationFailed(field="channel", problem=f"must be one of {', '.join(Channel.__members__)}")
    return channel.upper()


def check_country(country: str) -> str:
    if country and not (len(country) == 2 and country.isascii() and country.isalpha()):
        raise ValidationFailed(
            field="country", problem='must be an ISO 3166 code such as CH, or "" (default)'
        )
    return country.upper()


def index(prices: Iterable[Price]) -> dict[PriceKey, Price]:
    return {(p.channel, p.country): p for p in prices}


def by_country(prices: Iterable[PriceKey]) -> frozenset[str]:
    """The channels with a price for some country."""
    return frozenset(channel for channel, country in prices if country)


def pick(prices: Mapping[PriceKey, Price], channel: str, country: str | None) -> Price:
    """The price for one message on `channel` to `country` (None: unknown country)."""
    if country:
        found = prices.get((channel, country))
        if found is not None:
            return found
    return prices.get((channel, ""), FREE)
