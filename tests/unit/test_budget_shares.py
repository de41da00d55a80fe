"""A node's share of a cluster-wide budget (docs/architecture.md#cluster-wide-budgets) is applied to
the budget's own mechanism: the account rate limit, the SMPP connector's submit rate, Meta's per-Page
pacing."""

from __future__ import annotations

import pytest

from omnirelay.channels.messenger.pacing import PageGates
from omnirelay.channels.sms.config import SmppConnectorConfig, SmsRoute
from omnirelay.channels.sms.sender import SmppSender
from omnirelay.channels.sms.throughput import TokenBucket as SubmitRate
from omnirelay.domain.errors import RateLimited
from omnirelay.services.ratelimit import RateLimiter
from tests.doubles import FakeClock, InMemoryReceiptSink


def admitted(limiter: RateLimiter, at: float, tries: int = 100) -> int:
    ok = 0
    for _ in range(tries):
        try:
            limiter.check(1, now=at)
        except RateLimited:
            continue
        ok += 1
    return ok


def test_the_rate_limit_keeps_to_its_share_of_rate_and_burst() -> None:
    limiter = RateLimiter(rate_per_s=10, burst=10)
    limiter.scale(0.5)
    assert admitted(limiter, at=0.0) == 5  # half the burst
    assert admitted(limiter, at=1.0) == 5  # half the rate: 5 tokens in a second
    limiter.scale(1.0)
    assert admitted(limiter, at=2.0) == 10


def test_a_smaller_share_drops_saved_requests() -> None:
    limiter = RateLimiter(rate_per_s=10, burst=10)
    limiter.check(1, now=0.0)  # the account's bucket holds 9
    limiter.scale(0.25)
    assert admitted(limiter, at=0.0) == 2  # burst 2.5 now, not the 9 saved


def test_the_submit_rate_keeps_to_its_share() -> None:
    rate = SubmitRate(rate_per_s=100, burst=1)
    rate.set_rate(25)
    waits = [rate.reserve(0.0) for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.04, 0.08, 0.12, 0.16])


async def test_page_pacing_keeps_to_its_share_on_pages_seen_and_new() -> None:
    gates = PageGates(text_rate_per_s=200, media_rate_per_s=8)
    seen = gates["page-1"]
    gates.scale(0.5)
    fresh = gates["page-2"]
    for gate in (seen, fresh):
        assert (gate.text._rate_per_s, gate.media._rate_per_s) == (100, 4)
        assert (gate.text._tokens, gate.media._tokens) == (100, 4)  # no more saved than the share holds


async def test_each_smpp_bind_sends_at_its_part_of_the_connectors_throughput() -> None:
    """throughput / binds per bind (docs/architecture.md#smpp-binds), also for a connector whose
    configuration changes while it is held."""

    def connector(name: str, throughput: float) -> SmppConnectorConfig:
        return SmppConnectorConfig(name, "127.0.0.1", 9, "id", "pw", throughput_per_s=throughput)

    routes = [SmsRoute("", "a")]
    sender = SmppSender([connector("a", 100)], routes, InMemoryReceiptSink(), FakeClock(), held={})

    def rate(name: str) -> float:
        bucket = sender.session(name)._bucket
        assert bucket is not None
        return bucket.rate_per_s

    await sender.hold({"a": 2})  # never started: nothing binds
    assert rate("a") == 50
    await sender.reconfigure([connector("a", 40), connector("b", 10)], routes)  # a changed, b new
    assert (rate("a"), rate("b")) == (20, 10)  # b is not held here: nothing is sent on it
    await sender.hold({"a": 2, "b": 5})
    assert (rate("a"), rate("b")) == (20, 2)
    await sender.stop()
