"""The `omnirelay` command as a newcomer meets it: a fast `--help` that imports nothing heavy,
help pages without noise, output that copies whole from a narrow terminal or a pipe, a password
minimum, and one line per uvicorn event. Real processes (`python -m omnirelay`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import free_port

pytestmark = pytest.mark.timeout(120)

# What only serving or touching the database needs (and rich, which Typer's help would load).
# pydantic itself is Typer's: it coerces a command's parameters with it (Typer 0.29).
HEAVY = (
    "sqlalchemy",
    "alembic",
    "starlette",
    "uvicorn",
    "aiohttp",
    "httpx",
    "pydantic_settings",
    "rich",
    "smpplib",
    "omnirelay.bootstrap",
)


def cli(data_dir: Path, *args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "omnirelay", *args],
        env={**os.environ, "OMNIRELAY_DATA_DIR": str(data_dir), "COLUMNS": "40", **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("args", [["--help"], ["serve", "--help"], ["connectors", "add", "--help"]])
def test_help_imports_nothing_heavy(args: list[str]):
    probe = (
        "import sys\n"
        "from omnirelay.cli import app\n"
        "try:\n"
        f"    app({args!r}, prog_name='omnirelay')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('LOADED', [name for name in {HEAVY!r} if name in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert "Usage: omnirelay" in out.stdout
    assert out.stdout.splitlines()[-1] == "LOADED []", out.stdout


# What a data command (accounts, connectors, routes, prices) must not load: the serving stack, the
# channels, and Alembic once the schema is at head (docs/decisions/0009-newcomer-and-packaging.md).
SERVING = ("starlette", "uvicorn", "aiohttp", "httpx", "smpplib", "alembic", "omnirelay.bootstrap")


def test_a_data_command_loads_storage_only(tmp_path: Path):
    assert cli(tmp_path, "db", "migrate").returncode == 0  # the first run creates the schema
    probe = (
        "import sys\n"
        "from omnirelay.cli import app\n"
        "try:\n"
        "    app(['routes', 'list'], prog_name='omnirelay')\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        f"print('LOADED', [name for name in {SERVING!r} if name in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "OMNIRELAY_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.splitlines()[-1] == "LOADED []", out.stdout + out.stderr


def test_help_pages_show_no_type_beside_flags(tmp_path: Path):
    for args in (["--help"], ["serve", "--help"], ["connectors", "add", "--help"]):
        out = cli(tmp_path, *args)
        assert out.returncode == 0, out.stderr
        assert "<bool>" not in out.stdout, out.stdout
    assert "--sandbox / --no-sandbox" in cli(tmp_path, "serve", "--help").stdout


def test_api_key_and_config_print_whole_lines(tmp_path: Path):
    password = "a long enough password"
    created = cli(tmp_path, "accounts", "create", "alice", stdin=f"{password}\n{password}\n")
    assert created.returncode == 0, created.stderr
    out = cli(tmp_path, "accounts", "api-key", "alice")
    assert out.returncode == 0, out.stderr
    (line,) = out.stdout.splitlines()  # one line, in a 40-column terminal and a pipe
    scheme, key = line.removeprefix("Authorization: ").split(" ")
    assert scheme == "App" and len(key) > 40

    url = "postgresql+asyncpg://omnirelay:s3cret@db.internal.example:5432/omnirelay_production"
    shown = cli(tmp_path, "config", "show", OMNIRELAY_DATABASE_URL=url).stdout.splitlines()
    effective = next(line for line in shown if line.startswith("effective_database_url "))
    assert effective.endswith(
        "= postgresql+asyncpg://omnirelay:**********@db.internal.example:5432/omnirelay_production"
    )
    assert not any("s3cret" in line for line in shown)


def test_accounts_need_a_password_of_12_characters(tmp_path: Path):
    short = "eleven char"
    refused = cli(tmp_path, "accounts", "create", "bob", "--password", short)
    assert refused.returncode == 1
    assert refused.stderr.strip() == "error: password: must be at least 12 characters"
    again = cli(tmp_path, "accounts", "api-key", "bob")  # not created
    assert again.returncode == 1 and "no account bob" in again.stderr
    assert cli(tmp_path, "accounts", "create", "bob", "--password", short + "s").returncode == 0
    assert cli(tmp_path, "accounts", "api-key", "bob").returncode == 0


def test_serve_logs_each_uvicorn_event_once(tmp_path: Path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "omnirelay", "serve", "--port", str(port)],
        env={**os.environ, "OMNIRELAY_DATA_DIR": str(tmp_path)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "the sandbox did not start"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    log = err.decode()
    for event in ("Started server process", "Shutting down", "Finished server process"):
        assert log.count(event) == 1, log
