"""A Messenger send whose Graph API answer is lost is settled by Meta's echo, not sent twice."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from omnirelay import sandbox_data as sb
from omnirelay.config import Settings
from tests.e2e.conftest import BASIC, free_port, start_server


async def test_echo_settles_a_send_whose_answer_was_lost(tmp_path: Path):
    # Our Graph timeout (0.3 s) is shorter than the simulator's answer (1 s): the send times out
    # here, a retry is scheduled 1.5 s or more later, but Meta (the simulator) took the message and
    # echoes it, with our message id in `metadata`, long before that.
    settings = Settings(
        port=free_port(), data_dir=tmp_path, idle_poll_s=0.05, graph_timeout_s=0.3, retry_base_s=3
    )
    srv, task, app = await start_server(settings)
    graph = app.state.gateway.graph_simulator
    try:
        graph.set_slow(1.0)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.port}") as client:
            body = {"from": sb.APP_KEY, "to": sb.USER_KEY, "message": {"type": "TEXT", "text": "hello"}}
            sent = (await client.post("/facebook/1/single", json=body, headers=BASIC)).json()
            deadline = time.monotonic() + 15
            reports: list[dict] = []
            while not reports:
                assert time.monotonic() < deadline, "no final report"
                reports = (await client.get("/facebook/1/reports", headers=BASIC)).json()["results"]
                await asyncio.sleep(0.1)  # polling for a condition, under a deadline
            graph.set_slow(0)
        (report,) = reports
        assert report["messageId"] == sent["messageId"]
        assert report["status"]["name"] == "DELIVERED_TO_HANDSET"
        tries = [
            r
            for r in graph.requests
            if (r.body or {}).get("message", {}).get("metadata") == sent["messageId"]
        ]
        assert len(tries) == 1, "the retry must not send the message a second time"
    finally:
        srv.should_exit = True
        await task
