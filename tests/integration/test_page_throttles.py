"""Meta's throttling of a Page holds on every node (docs/architecture.md#cluster-wide-budgets): two
Graph senders, as on two nodes, share one database; the first is throttled by the Graph simulator
(error 613 over HTTP), and the second holds its sends to that Page without calling Meta."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from omnirelay.channels.messenger.graph import GraphSender, open_graph_session
from omnirelay.domain.errors import ChannelUnavailable
from omnirelay.domain.messages import AddressKind, Channel, FacebookContent, FacebookKind, Outbound
from omnirelay.ports import MessengerApplication, MessengerUser
from omnirelay.sandbox.graph import GraphSimulator
from omnirelay.services.page_throttles import SharedThrottles
from omnirelay.store.page_throttles import SqlPageThrottles
from omnirelay.store.writer import Writer
from tests.doubles import FakeClock
from tests.integration.test_graph_sender import InMemoryDirectory

PAGE, PSID, APP, TOKEN, SECRET = "310000000000001", "7310000000000001", "A" * 32, "EAAtoken", "secret"


@pytest.fixture
async def graph() -> AsyncIterator[GraphSimulator]:
    async with httpx.AsyncClient() as client, GraphSimulator(client) as g:
        g.add_page(PAGE, TOKEN, SECRET, "http://127.0.0.1:9/webhook")
        g.add_user(PAGE, PSID)
        yield g


def outbound() -> Outbound:
    return Outbound(
        message_id="m-1",
        account_id=1,
        channel=Channel.FACEBOOK,
        sender=APP,
        to="user-1",
        to_kind=AddressKind.USER_KEY,
        content=FacebookContent(FacebookKind.TEXT, text="hi"),
        expires_at=datetime(2026, 1, 7, tzinfo=UTC),
    )


async def test_a_throttle_met_by_one_node_holds_on_the_others(
    graph: GraphSimulator, engine: AsyncEngine, writer: Writer
) -> None:
    directory = InMemoryDirectory()
    directory.applications[APP] = MessengerApplication(APP, 1, "Shop", PAGE, TOKEN, SECRET, "verify")
    directory.users.append(MessengerUser("user-1", APP, PSID))
    session = open_graph_session(graph.base_url)
    try:
        clock = FakeClock()
        nodes = [GraphSender(session, directory, base_url=graph.base_url, clock=clock) for _ in range(2)]
        shared = [SharedThrottles(SqlPageThrottles(engine, writer), n, interval_s=1) for n in nodes]
        graph.script_error(
            PAGE, PSID, code=613, message="(#613) Calls to this API have exceeded the rate limit"
        )
        with pytest.raises(ChannelUnavailable):
            await nodes[0].send(outbound())  # throttled by Meta: 10 s without a usage header
        calls = len(graph.requests)
        await shared[0].exchange()  # told
        await shared[1].exchange()  # heard
        with pytest.raises(ChannelUnavailable) as info:
            await nodes[1].send(outbound())
        assert len(graph.requests) == calls  # held without calling Meta
        assert "throttled" in info.value.reason and 9 < (info.value.retry_after_s or 0) <= 10
        graph.clear_scripts()
        clock.advance(11)
        await nodes[1].send(outbound())  # the throttle has ended on the second node too
    finally:
        await session.close()
