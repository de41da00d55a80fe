"""What an operator sees when part of the gateway is down or storage falls behind."""

from __future__ import annotations

import asyncio

import httpx

from omnirelay.config import Settings
from tests.e2e.conftest import BASIC, RunningServer, json_of, start_server

FACEBOOK = {
    "from": "8F0792F86035A9F4290821F1EE6BC06A",
    "to": "9c29bd43-054b-4cfe-a1d4-0b37812b4ed3",
    "message": {"type": "TEXT", "text": "hi"},
}


async def test_ready_is_503_while_a_background_task_waits_for_its_restart(server: RunningServer):
    assert (await server.client.get("/ready")).status_code == 200
    supervisor = server.gateway.supervisor
    supervisor.restart_min_s = 60  # the crashed task stays down for the length of the test
    crashed = asyncio.Event()

    async def crashes() -> None:
        crashed.set()
        raise RuntimeError("a bug in a background task")

    supervisor.spawn("probe", crashes)
    await asyncio.wait_for(crashed.wait(), 5)
    for _ in range(200):
        r = await server.client.get("/ready")
        if r.status_code == 503:
            break
        await asyncio.sleep(0.01)  # polling for a condition, under a deadline
    assert r.status_code == 503
    assert json_of(r)["checks"]["task:probe"] is False
    await supervisor.stop("probe")
    assert (await server.client.get("/ready")).status_code == 200


async def test_sends_are_refused_with_retry_after_when_storage_falls_behind(settings: Settings):
    """`OMNIRELAY_WRITE_QUEUE_MAX=0`: storage is as far behind as the bound allows, so every send is
    refused at once with 503 and Retry-After in the API's error format, nothing accepted."""
    srv, task, _ = await start_server(settings.model_copy(update={"write_queue_max": 0}))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.port}") as client:
            r = await client.post("/facebook/1/single", json=FACEBOOK, headers=BASIC)
            assert r.status_code == 503
            assert int(r.headers["retry-after"]) >= 1
            assert json_of(r)["requestError"]["serviceException"]["messageId"] == "SERVICE_UNAVAILABLE"
            assert json_of(await client.get("/facebook/1/reports", headers=BASIC))["results"] == []
    finally:
        srv.should_exit = True
        await task
