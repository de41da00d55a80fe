"""A cluster's SMPP binds (docs/architecture.md#smpp-binds), proven under kill -9: three
`omnirelay serve` processes on one PostgreSQL database share one connector whose `binds` is 1 and
`throughput` 40/s, towards an SMSC (in this test's process) that refuses a second bind of the
account. Load goes through all three; the node holding the bind is killed mid-load and started
again later. Every accepted message gets exactly one final report; the SMSC never sees two binds at
once, nor more than the connector's rate in any second; no message is submitted twice except those
in flight at the kill."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from omnirelay.sandbox.smsc import ESME_ROK, SmscSimulator
from tests.e2e import cluster
from tests.e2e.conftest import free_port
from tests.waiting import until

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(240)]

TOKEN = "cluster-binds-operator-token-1"
OPERATOR = {"Authorization": f"Bearer {TOKEN}"}
ACCOUNT = ("binds", "binds test password")
RATE = 40  # the connector's submits per second, for the whole cluster
WINDOW = 10


def env(pg_database: str, node_id: str, data_dir: Path) -> dict[str, str]:
    return cluster.node_env(
        pg_database, node_id, data_dir, TOKEN, lease_s="3", idle_poll_s="0.05", config_poll_s="0.2"
    )


class Node:
    def __init__(self, pg_database: str, name: str, tmp_path: Path) -> None:
        self.name = name
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.data_dir = tmp_path / name
        self.data_dir.mkdir()
        self.env = env(pg_database, name, self.data_dir)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with (self.data_dir / "server.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "omnirelay", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=log,
            )

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    async def checks(self, client: httpx.AsyncClient) -> dict[str, bool] | None:
        with contextlib.suppress(httpx.HTTPError):
            r = await client.get(f"{self.base}/ready")
            checks: dict[str, bool] = r.json()["checks"]
            return checks
        return None


async def cli(pg_database: str, tmp_path: Path, *args: str) -> None:
    await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "omnirelay", *args],
        env=env(pg_database, "cli", tmp_path),
        check=True,
        capture_output=True,
        timeout=60,
    )


def busiest_second(times: list[float]) -> int:
    """The most submits within any one second (a sliding window over the submit times)."""
    times = sorted(times)
    most, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


async def test_three_nodes_share_one_bind_and_its_rate_through_a_kill(
    pg_database: str, tmp_path: Path
) -> None:
    await cluster.empty_database(pg_database)
    async with SmscSimulator(users={"gw": "secret"}, receipt_delay_s=0.05, max_binds=1) as smsc:
        await cli(pg_database, tmp_path, "accounts", "create", ACCOUNT[0], "--password", ACCOUNT[1])
        await cli(
            pg_database,
            tmp_path,
            "connectors", "add", "smsc1", "--host", "127.0.0.1", "--port", str(smsc.port),
            "--system-id", "gw", "--password", "secret", "--throughput", str(RATE),
            "--window", str(WINDOW), "--binds", "1", "--reconnect-min-s", "0.05", "--reconnect-max-s", "0.3",
        )  # fmt: skip
        await cli(pg_database, tmp_path, "routes", "add", "default", "smsc1")
        nodes = [Node(pg_database, f"node-{i}", tmp_path) for i in range(3)]
        accepted: list[str] = []
        try:
            for node in nodes:
                node.start()
            async with httpx.AsyncClient(timeout=10) as client:

                async def all_up() -> bool:
                    return all([await n.checks(client) is not None for n in nodes])

                await until(all_up, within_s=60, what="three nodes answering")
                r = await client.post(
                    f"{nodes[0].base}/omni/1/scenarios",
                    json={"name": "SMS", "flow": [{"from": "InfoSMS", "channel": "SMS"}], "default": True},
                    auth=ACCOUNT,
                )
                assert r.status_code == 200, r.text

                async def holder() -> Node | None:
                    for n in nodes:
                        if n.alive and ((await n.checks(client)) or {}).get("smpp:smsc1"):
                            return n
                    return None

                await until(lambda: smsc.bound_now("gw") == 1, within_s=20, what="one bind")
                number = iter(range(10_000))

                async def send_round() -> None:
                    for n in nodes:
                        if not n.alive:
                            continue
                        body = {
                            "destinations": [
                                {"to": {"phoneNumber": f"4179{next(number):07d}"}} for _ in range(10)
                            ],
                            "sms": {"text": "cluster"},
                        }
                        r = await client.post(f"{n.base}/omni/1/advanced", json=body, auth=ACCOUNT)
                        assert r.status_code == 200, r.text
                        accepted.extend(m["messageId"] for m in r.json()["messages"])

                for _ in range(4):
                    await send_round()
                await until(lambda: len(smsc.submits) >= 40, within_s=20, what="sending under way")
                killed = await holder()
                assert killed is not None
                killed.kill()
                killed_at = datetime.now(UTC)
                before_kill = set(accepted)
                for _ in range(4):
                    await send_round()  # through the two left, while nobody binds for a while
                await until(lambda: smsc.bound_now("gw") == 1, within_s=20, what="the bind taken over")
                killed.start()  # back later, under its own name

                async def back() -> bool:
                    return await killed.checks(client) is not None

                await until(back, within_s=60, what="the killed node answering again")
                for _ in range(2):
                    await send_round()

                reports: dict[str, dict[str, Any]] = {}

                async def all_reported() -> bool:
                    live = next(n for n in nodes if n.alive and n is not killed)
                    r = await client.get(f"{live.base}/omni/1/reports?limit=1000", auth=ACCOUNT)
                    for report in r.json()["results"]:
                        assert report["messageId"] not in reports, "two final reports for one message"
                        reports[report["messageId"]] = report
                    return set(accepted) <= set(reports)

                await until(all_reported, within_s=90, what="a final report for every message")
        finally:
            for node in nodes:
                if node.alive:
                    node.kill()
        assert {r["status"]["name"] for r in reports.values()} == {"DELIVERED_TO_HANDSET"}
        assert set(reports) == set(accepted)
        assert smsc.peak_binds["gw"] == 1  # never a second bind of the account at once
        assert [b for b in smsc.binds if b.status != ESME_ROK] == []  # nor one tried and refused
        # the rate and its burst (a tenth of it), and 2 for the event loops' timers firing late on a
        # loaded machine, which bunches submits scheduled 1/RATE apart
        assert busiest_second([s.received_at for s in smsc.submits]) <= RATE + RATE / 10 + 1 + 2
        twice = [d for d, k in Counter(s.destination for s in smsc.submits).items() if k > 1]
        assert len(twice) <= WINDOW, twice  # at most those in flight at the kill
        # the killed node's messages were finished by the others once its claims' leases (3 s, its
        # receipts' too) ran out and its bind was taken over (stale after 1.5 s): bounded well above
        # that, for a loaded machine, and far below the 90 s the reports were waited for
        last = max(datetime.strptime(reports[m]["doneAt"], "%Y-%m-%dT%H:%M:%S.%f%z") for m in before_kill)
        assert (last - killed_at).total_seconds() < 3 + 1.5 + 10


async def test_a_message_taken_in_by_a_node_without_the_bind_is_sent_at_once(
    pg_database: str, tmp_path: Path
) -> None:
    """Every node polls only every 30 s: the node that binds sends the other node's message at once
    because that node's commit wakes it (docs/architecture.md#wake-ups)."""
    await cluster.empty_database(pg_database)
    async with SmscSimulator(users={"gw": "secret"}, receipt_delay_s=0.05, max_binds=1) as smsc:
        await cli(pg_database, tmp_path, "accounts", "create", ACCOUNT[0], "--password", ACCOUNT[1])
        await cli(
            pg_database,
            tmp_path,
            "connectors", "add", "smsc1", "--host", "127.0.0.1", "--port", str(smsc.port),
            "--system-id", "gw", "--password", "secret", "--binds", "1",
        )  # fmt: skip
        nodes = [Node(pg_database, f"node-{i}", tmp_path) for i in range(2)]
        try:
            for node in nodes:
                node.env["OMNIRELAY_IDLE_POLL_S"] = "30"
                node.start()
            async with httpx.AsyncClient(timeout=10) as client:

                async def both_up() -> bool:
                    return all([await n.checks(client) is not None for n in nodes])

                await until(both_up, within_s=60, what="two nodes answering")
                await until(lambda: smsc.bound_now("gw") == 1, within_s=20, what="one bind")
                without = [n for n in nodes if not ((await n.checks(client)) or {}).get("smpp:smsc1")]
                assert len(without) == 1
                r = await client.post(
                    f"{without[0].base}/omni/1/scenarios",
                    json={"name": "SMS", "flow": [{"from": "InfoSMS", "channel": "SMS"}], "default": True},
                    auth=ACCOUNT,
                )
                assert r.status_code == 200, r.text
                body = {"destinations": [{"to": {"phoneNumber": "41793026727"}}], "sms": {"text": "wake up"}}
                r = await client.post(f"{without[0].base}/omni/1/advanced", json=body, auth=ACCOUNT)
                assert r.status_code == 200, r.text
                # well within the 30 s poll: only the wake-up can have sent it
                await until(lambda: len(smsc.submits) == 1, within_s=5, what="the message submitted")
        finally:
            for node in nodes:
                if node.alive:
                    node.kill()
