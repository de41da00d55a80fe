"""`omnirelay serve --workers N` (docs/architecture.md#several-nodes-on-one-host): N node processes
on one port against PostgreSQL, each a cluster member of its own; refused with a clear error on
SQLite and in sandbox mode."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from omnirelay.store.engine import make_engine
from tests.e2e import cluster
from tests.e2e.conftest import free_port
from tests.processes import interrupt
from tests.waiting import until

TOKEN = "workers-test-operator-token-01"
OPERATOR = {"Authorization": f"Bearer {TOKEN}"}


def refusal(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "omnirelay", "serve", "--workers", "2", *args],
        env={**os.environ, "OMNIRELAY_DATA_DIR": str(tmp_path), "OMNIRELAY_OPERATOR_TOKEN": TOKEN, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_workers_are_refused_on_sqlite_and_in_the_sandbox(tmp_path: Path) -> None:
    sandbox = refusal(tmp_path)
    assert sandbox.returncode == 2
    assert "--workers needs production mode" in sandbox.stderr
    sqlite = refusal(tmp_path, "--no-sandbox")
    assert sqlite.returncode == 2
    assert "--workers needs PostgreSQL" in sqlite.stderr
    assert "Traceback" not in sqlite.stderr + sandbox.stderr


@pytest.mark.postgres
@pytest.mark.timeout(120)
async def test_workers_are_nodes_of_their_own_on_one_port(pg_database: str, tmp_path: Path) -> None:
    await cluster.empty_database(pg_database)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = cluster.node_env(pg_database, "host-a", tmp_path, TOKEN)
    with (tmp_path / "server.log").open("wb") as log:
        proc = subprocess.Popen(  # noqa: ASYNC220 - the server under test, stopped as an operator would
            [
                sys.executable,
                "-m",
                "omnirelay",
                "serve",
                "--no-sandbox",
                "--workers",
                "2",
                "--port",
                str(port),
            ],
            env=env,
            stdout=log,
            stderr=log,
        )
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            listed: dict[str, object] = {}

            async def two_live() -> bool:
                with contextlib.suppress(httpx.HTTPError):
                    r = await client.get(f"{base}/admin/1/nodes", headers=OPERATOR)
                    listed.update(r.json())
                    return r.status_code == 200 and r.json()["live"] == 2
                return False

            await until(two_live, within_s=60, what="two worker nodes live")
            nodes = listed["nodes"]
            assert isinstance(nodes, list)
            pids = {n["pid"] for n in nodes}
            assert len(pids) == 2 and proc.pid not in pids  # two processes, neither the supervisor
            assert {n["nodeId"] for n in nodes} == {f"host-a-{pid}" for pid in pids}
            assert (await client.get(f"{base}/health")).status_code == 200
    finally:
        await asyncio.to_thread(interrupt, proc)
    assert proc.returncode is not None
    engine = make_engine(pg_database)
    try:
        async with engine.connect() as conn:
            stopped = (
                await conn.execute(text("SELECT count(*) FROM nodes WHERE stopped_at IS NOT NULL"))
            ).scalar()
    finally:
        await engine.dispose()
    assert stopped == 2  # each worker stopped gracefully, as one node does
