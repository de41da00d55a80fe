"""Cluster membership (docs/architecture.md#cluster-membership): two `omnirelay serve` processes on
one PostgreSQL database see each other live; a node killed with -9 turns STALE once its heartbeat is
older than the stale period, by the database's clock; a node stopped on purpose reads STOPPED.
Shown by `/admin/1/nodes`, `/metrics` and `omnirelay nodes`. The account rate limit holds for the
two nodes together (docs/architecture.md#cluster-wide-budgets)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e import cluster
from tests.e2e.conftest import free_port
from tests.processes import interrupt
from tests.waiting import until

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]

TOKEN = "cluster-test-operator-token-01"
OPERATOR = {"Authorization": f"Bearer {TOKEN}"}
RATE = 10  # requests per second and burst, per account, for the whole cluster
ACCOUNT = ("cluster", "cluster test password")


def node_env(pg_database: str, node_id: str, data_dir: Path) -> dict[str, str]:
    return cluster.node_env(
        pg_database, node_id, data_dir, TOKEN, rate_limit_per_s=str(RATE), rate_limit_burst=str(RATE)
    )


async def listed(client: httpx.AsyncClient, base: str) -> dict[str, Any]:
    r = await client.get(f"{base}/admin/1/nodes", headers=OPERATOR)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def states(body: dict[str, Any]) -> dict[str, str]:
    return {n["nodeId"]: n["state"] for n in body["nodes"]}


async def test_nodes_see_each_other_and_a_killed_node_turns_stale(pg_database: str, tmp_path: Path) -> None:
    await cluster.empty_database(pg_database)
    await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "omnirelay", "accounts", "create", ACCOUNT[0], "--password", ACCOUNT[1]],
        env=node_env(pg_database, "cli", tmp_path),
        check=True,
        capture_output=True,
        timeout=60,
    )
    procs: dict[str, subprocess.Popen[bytes]] = {}
    bases: dict[str, str] = {}
    try:
        for name in ("node-a", "node-b"):
            port = free_port()
            bases[name] = f"http://127.0.0.1:{port}"
            data_dir = tmp_path / name
            data_dir.mkdir()
            with (tmp_path / f"{name}.log").open("wb") as log:
                procs[name] = subprocess.Popen(  # noqa: ASYNC220 - a child process the test kills on purpose
                    [sys.executable, "-m", "omnirelay", "serve", "--port", str(port)],
                    env=node_env(pg_database, name, data_dir),
                    stdout=log,
                    stderr=log,
                )
        async with httpx.AsyncClient(timeout=5) as client:

            async def both_up() -> bool:
                for base in bases.values():
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(f"{base}/ready")).status_code != 200:
                            return False
                        continue
                    return False
                return True

            await until(both_up, within_s=60, what="both nodes ready")
            a = bases["node-a"]
            body = await listed(client, a)
            assert states(body) == {"node-a": "LIVE", "node-b": "LIVE"}
            assert body["live"] == 2 and body["staleAfterS"] == 1.5
            assert {n["nodeId"]: n["pid"] for n in body["nodes"]} == {k: p.pid for k, p in procs.items()}
            assert states(await listed(client, bases["node-b"])) == states(body)  # one view, either node

            # Each node limits at half the rate: the two together admit no more than the one rate.
            admitted = 0
            started = asyncio.get_running_loop().time()
            for i in range(8 * RATE):
                r = await client.get(
                    f"{bases['node-a' if i % 2 else 'node-b']}/omni/1/scenarios", auth=ACCOUNT
                )
                assert r.status_code in (200, 429), r.text
                admitted += r.status_code == 200
            elapsed = asyncio.get_running_loop().time() - started
            assert admitted <= RATE + RATE * elapsed + 1, (admitted, elapsed)

            procs["node-b"].send_signal(signal.SIGKILL)
            procs["node-b"].wait()

            async def b_stale() -> bool:
                return states(await listed(client, a)) == {"node-a": "LIVE", "node-b": "STALE"}

            await until(b_stale, within_s=10, what="the killed node listed STALE")
            metrics = (await client.get(f"{a}/metrics")).text
            assert 'omnirelay_cluster_nodes{state="LIVE"} 1.0' in metrics
            assert 'omnirelay_cluster_nodes{state="STALE"} 1.0' in metrics
        interrupt(procs["node-a"])  # a graceful stop says so
        out = (
            await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "omnirelay", "nodes"],
                env={**node_env(pg_database, "cli", tmp_path), "COLUMNS": "200"},
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            )
        ).stdout
        rows = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.startswith("node-")}
        assert rows == {"node-a": "STOPPED", "node-b": "STALE"}, out
        assert "0 live" in out
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
