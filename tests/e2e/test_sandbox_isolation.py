"""Production never serves the sandbox's demo data: `omnirelay serve` (sandbox) then
`omnirelay serve --no-sandbox` on the same data directory, as real processes, and the refusal
when production's database holds the demo account (docs/decisions/0009-newcomer-and-packaging.md)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from omnirelay.bootstrap import Gateway, RefusedToStart
from omnirelay.config import Settings
from tests.e2e.conftest import BASIC, free_port
from tests.processes import interrupt

pytestmark = pytest.mark.timeout(120)

TOKEN = "isolation-test-operator-token-0123"


class Servers:
    """`python -m omnirelay serve` processes started by the test, stopped by pid at the end."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, env: dict[str, str], *args: str) -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "omnirelay", "serve", "--port", str(port), *args],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(proc.communicate()[1].decode())
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    return proc, base
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not answer /health"
            time.sleep(0.05)

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        interrupt(proc)


@pytest.fixture
def servers() -> Iterator[Servers]:
    running = Servers()
    yield running
    for proc in running.procs:
        running.stop(proc)


def test_production_on_the_sandboxs_data_directory_has_no_demo_login(tmp_path: Path, servers: Servers):
    data = tmp_path / "data"
    env = {"OMNIRELAY_DATA_DIR": str(data)}
    sandbox, base = servers.start(env)  # `make run`
    assert httpx.get(f"{base}/omni/1/scenarios", headers=BASIC).status_code == 200
    servers.stop(sandbox)

    production_env = {**env, "OMNIRELAY_SANDBOX": "false", "OMNIRELAY_OPERATOR_TOKEN": TOKEN}
    _, base = servers.start(production_env)
    refused = httpx.get(f"{base}/omni/1/scenarios", headers=BASIC)
    assert refused.status_code == 401, refused.text
    assert sorted(p.name for p in data.glob("*.sqlite3")) == ["omnirelay.sqlite3", "sandbox.sqlite3"]


def test_production_refuses_a_database_that_holds_the_demo_account(tmp_path: Path, servers: Servers):
    # The sandbox's own SQLite file named explicitly, or a data directory from a sandbox run of an
    # older version (which used omnirelay.sqlite3 for both modes).
    data = tmp_path / "data"
    sandbox, _ = servers.start({"OMNIRELAY_DATA_DIR": str(data)})
    servers.stop(sandbox)
    shared = f"sqlite+aiosqlite:///{data / 'sandbox.sqlite3'}"
    env = {
        **os.environ,
        "OMNIRELAY_DATABASE_URL": shared,
        "OMNIRELAY_SANDBOX": "false",
        "OMNIRELAY_OPERATOR_TOKEN": TOKEN,
    }
    cmd = [sys.executable, "-m", "omnirelay", "serve", "--port", str(free_port())]
    out = subprocess.run(cmd, env=env, capture_output=True, timeout=60, check=False)
    assert out.returncode == 2, out.stderr.decode()
    err = out.stderr.decode()
    assert err.startswith("refusing to start in production mode: the database holds the sandbox's demo")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


async def test_the_gateway_refuses_it_too(tmp_path: Path):
    data = tmp_path / "data"
    sandbox = Gateway(Settings(data_dir=data, port=free_port()))
    await sandbox.start()
    await sandbox.stop()
    url = SecretStr(f"sqlite+aiosqlite:///{data / 'sandbox.sqlite3'}")
    production = Gateway(Settings(database_url=url, sandbox=False, operator_token=SecretStr(TOKEN)))
    with pytest.raises(RefusedToStart, match="demo account Aladdin"):
        await production.start()
    assert production.supervisor.names() == []  # nothing was left running
