"""The inbound store and the forwarding loop on real databases (SQLite, PostgreSQL) and real HTTP."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from omnirelay.channels.webhooks import HttpWebhookPoster
from omnirelay.ports import MessengerUser, NewForward, Registration
from omnirelay.services.forwarding import Forwarder, ForwardPolicy
from omnirelay.store.forwards import SqlForwardStore
from omnirelay.store.inbound import SqlInboundStore
from omnirelay.store.writer import Writer
from tests.doubles import FakeClock
from tests.e2e.conftest import free_port
from tests.e2e.receiver import Receiver

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


def person(psid: str, user_key: str) -> MessengerUser:
    return MessengerUser(user_key=user_key, application_key="APP", psid=psid)


async def test_accept_inbound_registers_once_and_dedupes(engine: AsyncEngine, writer: Writer) -> None:
    store = SqlInboundStore(engine, writer)
    clock = FakeClock()
    seen: list[Registration] = []

    def forwards(registration: Registration) -> list[NewForward]:
        seen.append(registration)
        return [NewForward("http://x/hook", b'{"n":1}')]

    first = await store.accept_inbound("APP:m_1", person("p1", "k-1"), clock.now(), forwards)
    assert first == Registration(person("p1", "k-1"), is_new=True)
    again = await store.accept_inbound("APP:m_1", person("p1", "k-other"), clock.now(), forwards)
    assert again is None  # Meta's retry: nothing happens
    second = await store.accept_inbound("APP:m_2", person("p1", "k-2"), clock.now(), forwards)
    assert second == Registration(person("p1", "k-1"), is_new=False)  # same person, same key
    assert await store.user_by_psid("APP", "p1") == person("p1", "k-1")
    assert await store.seen("APP:m_2") and not await store.seen("APP:m_3")
    await store.mark_seen("APP:m_3", "APP", clock.now())
    await store.mark_seen("APP:m_3", "APP", clock.now())  # idempotent
    assert await store.seen("APP:m_3")

    claimed = await SqlForwardStore(engine, writer).claim_forwards(clock.now(), 60, 10)
    assert [f.body for f in claimed] == [b'{"n":1}', b'{"n":1}']  # one per accepted event


async def test_forwards_are_retried_then_delivered_once(
    engine: AsyncEngine, writer: Writer, client: httpx.AsyncClient
) -> None:
    clock = FakeClock()
    store = SqlForwardStore(engine, writer)
    forwarder = Forwarder(
        store, HttpWebhookPoster(client, timeout_s=2), clock, ForwardPolicy(give_up_after_s=600)
    )
    async with Receiver(fail_first=2) as receiver:
        await SqlInboundStore(engine, writer).accept_inbound(
            "APP:m_9",
            person("p9", "k-9"),
            clock.now(),
            lambda _r: [NewForward(receiver.url, b'{"results":[]}')],
        )
        assert await forwarder.run_once() == 1
        assert await forwarder.run_once() == 0  # backing off
        clock.advance(1.5)
        assert await forwarder.run_once() == 1
        assert receiver.attempts == 2 and receiver.bodies == []
        clock.advance(1.0)
        assert await forwarder.run_once() == 0  # the second delay is longer (≥ 1.6 s)
        clock.advance(2.0)
        assert await forwarder.run_once() == 1
        assert receiver.bodies == [{"results": []}]
        clock.advance(3600)
        assert await forwarder.run_once() == 0  # delivered: never again
        assert receiver.attempts == 3


async def test_a_forward_that_never_succeeds_is_given_up(
    engine: AsyncEngine, writer: Writer, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    store = SqlForwardStore(engine, writer)
    forwarder = Forwarder(
        store, HttpWebhookPoster(client, timeout_s=2), clock, ForwardPolicy(give_up_after_s=30)
    )
    dead = f"http://127.0.0.1:{free_port()}/nobody"
    await SqlInboundStore(engine, writer).accept_inbound(
        "APP:m_dead", person("pd", "k-d"), clock.now(), lambda _r: [NewForward(dead, b"{}")]
    )
    tries = 0
    with caplog.at_level(logging.WARNING, logger="omnirelay.services.forwarding"):
        for _ in range(40):
            tries += await forwarder.run_once()
            clock.advance(5)
    assert 2 <= tries <= 10
    assert any("gave up forwarding" in r.getMessage() for r in caplog.records)
    clock.advance(3600)
    assert await forwarder.run_once() == 0
