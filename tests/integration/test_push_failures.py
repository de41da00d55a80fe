"""A notifyUrl the HTTP client cannot even use is a counted failed try of its own reports, and the
other reports of the same batch are pushed and settled (the real notifier, store, poster, receiver)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from omnirelay.channels.webhooks import HttpWebhookPoster
from omnirelay.domain.times import to_ms
from omnirelay.services.notifier import Notifier, PushPolicy
from omnirelay.store.pushes import SqlPushStore
from omnirelay.store.tables import reports
from omnirelay.store.writer import Writer
from tests.doubles import FakeClock
from tests.e2e.receiver import Receiver

pytestmark = pytest.mark.timeout(30)

# Each fails inside httpx before any connection, with an exception that is not an httpx.HTTPError
# (kept by an earlier version that did not check notifyUrl as the client parses it).
BAD_URLS = ["http://[::1/", "http://xn--/hook", "http://127.0.0.1:99999/hook"]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


async def test_a_url_httpx_cannot_use_is_a_failed_try_and_the_batch_still_settles(
    engine: AsyncEngine, writer: Writer, client: httpx.AsyncClient
) -> None:
    clock = FakeClock()
    now = to_ms(clock.now())
    async with Receiver() as receiver:
        urls = [*BAD_URLS, receiver.url]
        async with engine.begin() as conn:
            for i, url in enumerate(urls):
                await conn.execute(
                    insert(reports).values(
                        account_id=1,
                        message_pk=i + 1,
                        api="OMNI",
                        kind="FINAL",
                        state="PUSH",
                        body=f'{{"messageId":"m{i}"}}',
                        message_id=f"m{i}",
                        notify_url=url,
                        created_at=now,
                        next_push_at=now,
                        push_tries=0,
                    )
                )
        policy = PushPolicy(base_s=60, step_s=60)
        notifier = Notifier(SqlPushStore(engine, writer), HttpWebhookPoster(client), clock, policy)
        assert await notifier.run_once() == len(urls)  # no exception escapes the batch
        assert receiver.results == [{"messageId": f"m{len(BAD_URLS)}"}]

    async with engine.connect() as conn:
        rows = {
            r.notify_url: r
            for r in await conn.execute(
                select(reports.c.notify_url, reports.c.state, reports.c.push_tries, reports.c.next_push_at)
            )
        }
    assert rows[receiver.url].state == "DONE"
    for url in BAD_URLS:  # counted, and due again after the back-off, not at the lease's end
        assert (rows[url].state, rows[url].push_tries) == ("PUSH", 1), url
        assert rows[url].next_push_at == to_ms(clock.now() + timedelta(seconds=policy.delay_s(1)))
    # the next round finds nothing due: the batch is not pushed again each minute
    clock.advance(policy.lease_s)
    assert await notifier.run_once() == 0
