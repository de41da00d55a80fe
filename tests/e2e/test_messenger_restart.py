"""Production mode against a standalone Graph simulator: omnirelay stops between a send and its
delivery webhook, Meta's retries fail meanwhile, omnirelay comes back on the same port and data
directory, and the message ends delivered exactly once."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from omnirelay.config import Settings
from omnirelay.sandbox.graph import GraphSimulator
from omnirelay.services.accounts import hash_password
from tests.e2e.conftest import free_port, json_of, start_server

pytestmark = pytest.mark.timeout(90)

AUTH = {"Authorization": "Basic " + base64.b64encode(b"carol:carol's password").decode()}
PAGE_ID = "424242424242"
TOKEN = "page-token-for-restart-test"
SECRET = "app-secret-for-restart-test"


async def wait_for(check: Any, timeout_s: float = 10, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)  # polling, under the deadline above


async def test_delivery_webhook_survives_a_restart(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    delivery_tries = 0

    async def count_deliveries(request: httpx.Request) -> None:
        nonlocal delivery_tries
        if b'"delivery"' in request.content:
            delivery_tries += 1

    async with httpx.AsyncClient(event_hooks={"request": [count_deliveries]}) as hooks:
        graph = GraphSimulator(
            hooks,
            delivery_delay_s=0.8,
            send_echoes=True,
            webhook_retry_delays_s=(0.25,) * 60,  # Meta keeps retrying for a while
            webhook_timeout_s=1.0,
        )
        await graph.start()
        settings = Settings(
            host="127.0.0.1",
            port=port,
            data_dir=tmp_path / "data",
            sandbox=False,
            operator_token=SecretStr("an-operator-token-that-is-long-enough-1234"),
            graph_base_url=graph.base_url,
            idle_poll_s=0.05,
        )
        server, task, app = await start_server(settings)
        try:
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                gateway = app.state.gateway
                await gateway.accounts.create_account(
                    "carol", hash_password("carol's password"), gateway.clock.now()
                )
                created = await client.post(
                    "/facebook/1/applications",
                    headers=AUTH,
                    json={
                        "name": "Restart",
                        "pageId": PAGE_ID,
                        "pageAccessToken": TOKEN,
                        "appSecret": SECRET,
                    },
                )
                assert created.status_code == 200, created.text
                key = json_of(created)["key"]
                graph.add_page(PAGE_ID, TOKEN, SECRET, base + json_of(created)["callbackUrl"])
                person = await graph.user_sends(PAGE_ID, text="hello")
                assert person.webhook is not None and person.webhook.delivered
                (user,) = json_of(await client.get(f"/facebook/1/applications/{key}/users", headers=AUTH))

                sent = await client.post(
                    "/facebook/1/single",
                    headers=AUTH,
                    json={"from": key, "to": user["key"], "message": {"type": "TEXT", "text": "see you"}},
                )
                message_id = json_of(sent)["messageId"]

                async def waiting() -> bool:
                    logs = json_of(await client.get(f"/facebook/1/logs?messageId={message_id}", headers=AUTH))
                    return (
                        bool(logs["results"])
                        and logs["results"][0]["status"]["name"] == "PENDING_WAITING_DELIVERY"
                    )

                await wait_for(waiting, what="the send to be accepted by Graph")
        finally:
            server.should_exit = True
            await task

        # down: the delivery webhook (due 0.8 s after the send) fails and is retried
        async def tried_twice() -> bool:
            return delivery_tries >= 2

        await wait_for(tried_twice, what="two delivery tries while omnirelay is down")
        assert not [w for w in graph.webhooks if "delivery" in w.body["entry"][0]["messaging"][0]]

        server, task, app = await start_server(settings)
        try:
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:

                async def report() -> list[dict[str, Any]]:
                    body = json_of(await client.get("/facebook/1/reports", headers=AUTH))
                    return body["results"]  # type: ignore[no-any-return]

                (row,) = await wait_for(report, timeout_s=20, what="the final report")
                assert row["messageId"] == message_id
                assert row["status"]["name"] == "DELIVERED_TO_HANDSET"
                assert row["to"] == user["key"]
                await graph.settle()
                (delivery,) = [w for w in graph.webhooks if "delivery" in w.body["entry"][0]["messaging"][0]]
                assert delivery.delivered and delivery.attempts > 2  # it failed while omnirelay was down
                assert await report() == []  # exactly once
                logs = json_of(await client.get(f"/facebook/1/logs?messageId={message_id}", headers=AUTH))
                assert logs["results"][0]["status"]["name"] == "DELIVERED_TO_HANDSET"
        finally:
            server.should_exit = True
            await task
            await graph.stop()
