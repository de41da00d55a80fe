"""The operator CLI (connectors, routes, prices, production refusal) against a temp data dir, and the
standalone simulators (`omnirelay sandbox smsc`, `omnirelay sandbox graph`) run as processes."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from omnirelay import sandbox_data as demo
from omnirelay.bootstrap import Gateway
from omnirelay.channels.sms.config import SmppConnectorConfig
from omnirelay.channels.sms.sender import SmppSender
from omnirelay.cli import app
from omnirelay.clock import SystemClock
from omnirelay.config import Settings
from omnirelay.domain.messages import AddressKind, Channel, Outbound, SmsContent
from omnirelay.domain.prices import Price
from tests.doubles import InMemoryReceiptSink
from tests.e2e.conftest import free_port


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def run(data_dir: Path, *args: str) -> Result:
    env = {"OMNIRELAY_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    return CliRunner().invoke(app, list(args), env=env)


async def stored(data_dir: Path) -> tuple[list[object], list[object], list[Price]]:
    gateway = Gateway(Settings(data_dir=data_dir, sandbox=False))  # where the CLI writes
    await gateway.open_storage()
    try:
        assert gateway.connectors is not None and gateway.prices is not None
        return (
            list(await gateway.connectors.list_connectors()),
            list(await gateway.connectors.routes()),
            await gateway.prices.list_prices(),
        )
    finally:
        await gateway.stop()


def test_connectors_and_routes(data_dir: Path):
    add = [
        "connectors",
        "add",
        "smsc1",
        "--host",
        "127.0.0.1",
        "--port",
        "2775",
        "--system-id",
        "gw",
        "--password",
        "pw-S3cr",
        "--window",
        "5",
        "--throughput",
        "20",
        "--tls",
    ]
    r = run(data_dir, *add)
    assert r.exit_code == 0, r.output
    assert "pw-S3cr" not in r.output
    again = run(data_dir, *add)
    assert again.exit_code == 1 and "connector smsc1 already exists" in again.output
    listed = run(data_dir, "connectors", "list")
    assert listed.exit_code == 0
    assert "smsc1" in listed.stdout and "********" in listed.stdout and "pw-S3cr" not in listed.stdout
    bad = run(data_dir, *add[:6], "70000", *add[7:])
    assert bad.exit_code == 1 and "port: must be between 1 and 65535" in bad.output

    assert run(data_dir, "routes", "add", "41", "smsc1").exit_code == 0
    assert run(data_dir, "routes", "add", "default", "smsc1").exit_code == 0
    unknown = run(data_dir, "routes", "add", "49", "nope")
    assert unknown.exit_code == 1 and "no connector named nope" in unknown.output
    routes = run(data_dir, "routes", "list")
    assert "41" in routes.stdout and "default" in routes.stdout

    connectors, route_rows, _ = asyncio.run(stored(data_dir))
    (connector,) = connectors
    assert connector == connector.__class__(  # type: ignore[call-arg]
        name="smsc1",
        host="127.0.0.1",
        port=2775,
        system_id="gw",
        password="pw-S3cr",
        tls=True,
        throughput_per_s=20.0,
        window=5,
    )
    assert len(route_rows) == 2

    used = run(data_dir, "connectors", "remove", "smsc1")
    assert used.exit_code == 1 and "used by routes" in used.output
    assert run(data_dir, "routes", "remove", "41").exit_code == 0
    assert run(data_dir, "routes", "remove", "default").exit_code == 0
    assert run(data_dir, "connectors", "remove", "smsc1").exit_code == 0
    assert run(data_dir, "connectors", "remove", "smsc1").exit_code == 1
    assert asyncio.run(stored(data_dir))[:2] == ([], [])


def test_prices(data_dir: Path):
    r = run(data_dir, "prices", "set", "SMS", "0.05", "--country", "CH", "--currency", "CHF")
    assert r.exit_code == 0, r.output
    assert run(data_dir, "prices", "set", "sms", "0.07").exit_code == 0
    bad = run(data_dir, "prices", "set", "SMS", "0.07", "--currency", "EURO")
    assert bad.exit_code == 1 and "currency" in bad.output
    listed = run(data_dir, "prices", "list")
    assert "CH" in listed.stdout and "0.05" in listed.stdout and "CHF" in listed.stdout
    assert asyncio.run(stored(data_dir))[2] == [
        Price("SMS", "", 0.07, "EUR"),
        Price("SMS", "CH", 0.05, "CHF"),
    ]
    assert run(data_dir, "prices", "remove", "SMS", "--country", "CH").exit_code == 0
    assert asyncio.run(stored(data_dir))[2] == [Price("SMS", "", 0.07, "EUR")]


def test_serve_refuses_production_with_the_default_token(data_dir: Path):
    r = run(data_dir, "serve", "--no-sandbox", "--port", str(free_port()))
    assert r.exit_code == 2
    assert "refusing to start in production mode" in r.stderr
    assert "OMNIRELAY_OPERATOR_TOKEN" in r.stderr


def test_serve_stops_within_its_grace_despite_a_stalled_request(data_dir: Path):
    # A client sends a request's headers and half its body, then nothing: on SIGINT the server
    # waits `shutdown_grace_s` for it, then cancels it and stops (it used to wait for ever).
    port = free_port()
    env = {**os.environ, "OMNIRELAY_DATA_DIR": str(data_dir), "OMNIRELAY_SHUTDOWN_GRACE_S": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "omnirelay", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_listening(port, proc, timeout_s=60)
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(
                b"POST /omni/1/advanced HTTP/1.1\r\nHost: x\r\nAuthorization: Basic "
                + base64.b64encode(f"{demo.USERNAME}:{demo.PASSWORD}".encode())
                + b'\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"destinations"'
            )
            # The server accepts connections in order: once a later request is answered, this one
            # has been read and is under way, waiting for the rest of its body.
            with socket.create_connection(("127.0.0.1", port)) as later:
                later.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert later.recv(64).startswith(b"HTTP/1.1 200")
            os.kill(proc.pid, signal.SIGINT)
            _, err = proc.communicate(timeout=30)
        assert b"timeout graceful shutdown exceeded" in err, err.decode()
        assert b"Application shutdown complete" in err  # the gateway stopped too
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


# --- standalone simulators ---------------------------------------------------------------------


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)  # polling, under the deadline above
    raise AssertionError(f"nothing listening on {port}")


@pytest.fixture
def spawn() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:  # only the processes this test started, by pid
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGINT)
        try:
            proc.communicate(timeout=10)  # also closes the pipe
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()


def start(spawn: list[subprocess.Popen[bytes]], *args: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "omnirelay", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    spawn.append(proc)
    return proc


async def test_sandbox_smsc_command(spawn: list[subprocess.Popen[bytes]]):
    port = free_port()
    proc = start(spawn, "sandbox", "smsc", "--port", str(port), "--system-id", "esme", "--password", "pw")
    await asyncio.to_thread(wait_listening, port, proc)
    sink = InMemoryReceiptSink()
    clock = SystemClock()
    config = SmppConnectorConfig(name="t", host="127.0.0.1", port=port, system_id="esme", password="pw")
    sender = SmppSender([config], [], sink, clock)
    await sender.start()
    try:
        assert await sender.wait_bound(10)
        accepted = await sender.send(
            Outbound(
                message_id="m-1",
                account_id=1,
                channel=Channel.SMS,
                sender="InfoSMS",
                to="41793026727",
                to_kind=AddressKind.PHONE,
                content=SmsContent("hello"),
                expires_at=clock.now() + timedelta(minutes=5),
            )
        )
        assert len(accepted.refs) == 1
        deadline = time.monotonic() + 10
        while not sink.receipts:
            assert time.monotonic() < deadline, "no delivery receipt"
            await asyncio.sleep(0.05)  # polling for a condition, under a deadline
        assert sink.receipts[0].ref == accepted.refs[0]
        assert sink.receipts[0].status.name == "DELIVERED_TO_HANDSET"
    finally:
        await sender.stop()


async def test_sandbox_graph_command(spawn: list[subprocess.Popen[bytes]]):
    port = free_port()
    proc = start(spawn, "sandbox", "graph", "--port", str(port), "--omnirelay-url", "http://127.0.0.1:9")
    await asyncio.to_thread(wait_listening, port, proc)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        ok = await client.post(
            f"/v25.0/{demo.PAGE_ID}/messages",
            params={"access_token": demo.PAGE_TOKEN},
            json={"recipient": {"id": demo.PSID}, "messaging_type": "UPDATE", "message": {"text": "hi"}},
        )
        assert ok.status_code == 200, ok.text
        assert ok.json()["recipient_id"] == demo.PSID and ok.json()["message_id"]
        unknown = await client.post(
            f"/v25.0/{demo.PAGE_ID}/messages",
            params={"access_token": demo.PAGE_TOKEN},
            json={
                "recipient": {"phone_number": "+41793026727"},
                "messaging_type": "UPDATE",
                "message": {"text": "hi"},
            },
        )
        assert unknown.status_code == 400 and unknown.json()["error"]["error_subcode"] == 2018001
        wrong_token = await client.post(
            f"/v25.0/{demo.PAGE_ID}/messages",
            params={"access_token": "nope"},
            json={"recipient": {"id": demo.PSID}, "messaging_type": "UPDATE", "message": {"text": "hi"}},
        )
        assert wrong_token.status_code == 400 and wrong_token.json()["error"]["code"] == 190
