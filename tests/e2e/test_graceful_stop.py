"""A graceful stop (SIGTERM, as every deploy does) sends nothing twice.

omnirelay runs as a real process in production mode against the Graph API and SMSC simulators of
this test's process. The SMSC answers each submit after 0.2 s, so that many sends are under way
when SIGTERM arrives. The server must stop claiming, let those sends finish and write their
outcomes, close the SMPP binds, and only then stop storage: after a restart, no message reaches
the SMSC a second time and every accepted message has exactly one final report
(docs/architecture.md, "Stopping").
"""

from __future__ import annotations

import asyncio
import re
import signal
from collections import Counter
from pathlib import Path

import httpx
import pytest

from omnirelay.sandbox.graph import GraphSimulator
from omnirelay.sandbox.smsc import SmscSimulator
from tests.e2e.conftest import free_port
from tests.e2e.test_crash import AUTH, ServerProcess, configure, final_reports, provision


async def paced_sender(base: str, accepted: dict[str, str], stop: asyncio.Event, rate_per_s: float) -> None:
    """One message per request at about `rate_per_s` (within the SMSC's pace: what it cannot answer
    in time would be an unknown outcome, retried by design, which is not what this test is about),
    each request retried with its Idempotency-Key until answered, also across the restart."""
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        n = 0
        while not stop.is_set():
            n += 1
            phone = f"4178{n:07d}"
            body = {
                "destinations": [{"to": {"phoneNumber": phone}}],
                "facebook": {"text": "f"},
                "sms": {"text": "s"},
            }
            while True:
                try:
                    r = await client.post(
                        "/omni/1/advanced", json=body, auth=AUTH, headers={"Idempotency-Key": f"gs-{phone}"}
                    )
                except httpx.HTTPError:
                    await asyncio.sleep(0.05)  # the server is stopping or starting: try again
                    continue
                if r.status_code == 503:
                    await asyncio.sleep(0.05)  # the client's pause before its retry
                    continue
                assert r.status_code == 200, r.text
                accepted.setdefault(r.json()["messages"][0]["messageId"], phone)
                break
            await asyncio.sleep(1 / rate_per_s)  # the pace of the traffic, not a synchronisation


pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


async def test_sigterm_under_load_sends_nothing_twice(tmp_path: Path):
    accepted: dict[str, str] = {}
    async with (
        httpx.AsyncClient() as hooks,
        GraphSimulator(hooks, delivery_delay_s=0.05) as graph,
        SmscSimulator(users={"gw": "secret"}, receipt_delay_s=0.05, response_delay_s=0.2) as smsc,
    ):
        server = ServerProcess(tmp_path, free_port(), graph.base_url)
        server.env["OMNIRELAY_SHUTDOWN_GRACE_S"] = "10"
        server.env["OMNIRELAY_LEASE_S"] = "30"  # no send times out: a duplicate could only come from the stop
        await provision(tmp_path, graph, server.base)
        try:
            await server.start()
            await configure(server, smsc)
            for _ in range(2):
                stop = asyncio.Event()
                client = asyncio.create_task(paced_sender(server.base, accepted, stop, 40))
                before = len(smsc.submits)
                await smsc.wait_for(lambda b=before: len(smsc.submits) >= b + 30, timeout_s=30)  # type: ignore[misc]
                assert server.proc is not None
                server.proc.send_signal(signal.SIGTERM)
                await asyncio.to_thread(server.proc.wait, 60)
                await server.start()
                await asyncio.sleep(0.3)  # the clients send to the restarted server for a while
                stop.set()
                await client

            reports = await final_reports(server.base, set(accepted), within_s=60)
        finally:
            server.stop()
    log = (tmp_path / "server.log").read_text()
    assert not set(accepted) - set(reports), "accepted messages without a final report"
    assert {r["status"]["name"] for r in reports.values()} == {"DELIVERED_TO_HANDSET"}
    twice = {phone: n for phone, n in Counter(s.destination for s in smsc.submits).items() if n > 1}
    assert not twice, f"{len(twice)} messages reached the SMSC twice after a graceful stop"
    assert "sends still running after" not in log
    waited = [int(m) for m in re.findall(r"waiting up to [\d.]+ s for (\d+) sends under way", log)]
    assert len(waited) == 2 and min(waited) > 0, "no send was under way at SIGTERM: the test proves nothing"
