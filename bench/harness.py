"""Processes and measurements: servers under test, wrk, databases, statistics."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from omnirelay.sandbox.graph import numbered_page, numbered_pages, numbered_user

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
AUTH = "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
HEADERS = {"Authorization": AUTH, "Content-Type": "application/json"}
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SERVER_CPU = "0"
LOAD_CPU = "1"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A free port below the ephemeral range, so that the sandbox simulators (port 0) cannot take it
    between this check and the server's bind."""
    while True:
        port = random.randint(20_000, 32_000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    log("wrk not found: installing it with apt-get (Debian package 'wrk')")
    apt = ["apt-get", "install", "-y", "-q", "wrk"]
    if os.geteuid() != 0:
        apt = ["sudo", "-n", *apt]
    if subprocess.run(apt, check=False, capture_output=True).returncode != 0:
        subprocess.run([*apt[:-4], "update", "-q"], check=False, capture_output=True)
        subprocess.run(apt, check=True, capture_output=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("could not install wrk")
    return found


# -- statistics -------------------------------------------------------------------------------


@dataclass
class Figure:
    """Several runs of one measurement: reported as median [min–max]."""

    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(value)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    def show(self, fmt: str = "{:,.0f}") -> str:
        if not self.values:
            return "–"
        if len(self.values) == 1:
            return fmt.format(self.values[0])
        return f"{fmt.format(self.median)} [{fmt.format(min(self.values))}–{fmt.format(max(self.values))}]"


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


# -- databases --------------------------------------------------------------------------------


def psql(sql: str, db: str = "postgres") -> str:
    out = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-At", "-c", sql],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


def pg_available() -> bool:
    try:
        psql("SELECT 1")
    except (subprocess.CalledProcessError, FileNotFoundError):
        return False
    return True


@dataclass
class Database:
    """A fresh database for one server: a SQLite file in a temporary directory, or a PostgreSQL
    database created for the run and dropped afterwards."""

    kind: str  # sqlite | pg
    data_dir: Path
    pg_name: str | None = None

    @property
    def url(self) -> str | None:
        if self.kind == "pg":
            return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{self.pg_name}"
        return None

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        if self.kind == "pg":
            assert self.pg_name is not None
            out = psql(sql, self.pg_name)
            return [tuple(_num(v) for v in line.split("|")) for line in out.splitlines() if line]
        conn = sqlite3.connect(f"file:{self.data_dir / 'omnirelay.sqlite3'}?mode=ro", uri=True, timeout=30)
        try:
            return list(conn.execute(sql).fetchall())
        finally:
            conn.close()


def _num(v: str) -> Any:
    if v == "":
        return None
    try:
        return int(v)
    except ValueError:
        try:
            return float(v)
        except ValueError:
            return v


@contextlib.contextmanager
def database(kind: str) -> Iterator[Database]:
    data_dir = Path(tempfile.mkdtemp(prefix="omnirelay-bench-"))
    name = None
    if kind == "pg":
        name = f"omnirelay_bench_{os.getpid()}_{int(time.time() * 1000) % 10**8}"
        psql(f"CREATE DATABASE {name}")
    try:
        yield Database(kind, data_dir, name)
    finally:
        if name is not None:
            psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        shutil.rmtree(data_dir, ignore_errors=True)


# -- servers ----------------------------------------------------------------------------------


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")


@contextlib.contextmanager
def server(
    db: Database | None,
    *,
    setup: str = "plain",
    pin: str | None = SERVER_CPU,
    ready: bool = False,
    log_level: str | None = None,
) -> Iterator[Server]:
    """Start the server under test (`db` None: the ceiling) and stop it afterwards."""
    port = free_port()
    cmd = [sys.executable, "-m", "bench.server", "--port", str(port)]
    env = dict(os.environ)
    env.pop("OMNIRELAY_DATABASE_URL", None)
    if db is None:
        cmd.append("--ceiling")
        log_dir = Path(tempfile.mkdtemp(prefix="omnirelay-bench-"))
    else:
        cmd += ["--data-dir", str(db.data_dir), "--setup", setup]
        if log_level:
            cmd += ["--log-level", log_level]
        if db.url:
            env["OMNIRELAY_DATABASE_URL"] = db.url
        log_dir = db.data_dir
    if pin is not None:
        cmd = ["taskset", "-c", pin, *cmd]
    log_path = log_dir / "server.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    srv = Server(proc, port, log_path)
    try:
        _wait_up(srv, "/ready" if ready else "/health")
        yield srv
    finally:
        stop_process(proc)


# -- production mode: the gateway alone, the simulators in their own processes ----------------

OPERATOR_TOKEN = "omnirelay-bench-operator-token-0123456789"  # a local secret of >= 16 characters
BENCH_USER = ("bench", "bench password")
BENCH_HEADERS = {
    "Authorization": "Basic " + base64.b64encode(":".join(BENCH_USER).encode()).decode(),
    "Content-Type": "application/json",
}
SMSC_USER = ("bench", "benchpw")  # SMPP: system_id up to 15, password up to 8 characters
SMS_SENDER = "InfoSMS"
CONNECTOR = "bench"
SIMULATOR_CPU = LOAD_CPU


@dataclass
class Production:
    """omnirelay serving in production mode, provisioned through its own API, and the simulators."""

    gateway: Server
    applications: list[str]  # Messenger application keys, one per simulated Page
    scenarios: list[str]  # one per simulated Page; the first is the account's default
    graph: subprocess.Popen[bytes]
    smsc: subprocess.Popen[bytes]


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def process(
    cmd: list[str], log_path: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process, logging to `log_path`; SIGINT (then SIGKILL after 30 s) when the block ends."""
    with log_path.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        stop_process(proc)


def wait_listening(proc: subprocess.Popen[bytes], port: int, log_path: Path, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"nothing listening on {port}: {log_path.read_text()[-3000:]}")
        time.sleep(0.1)


def _ok(r: httpx.Response) -> dict[str, Any]:
    if r.status_code != 200:
        raise RuntimeError(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:500]}")
    out: dict[str, Any] = r.json()
    return out


@contextlib.contextmanager
def production(db: Database, pages: int, *, receipt_delay_s: float = 0.2) -> Iterator[Production]:
    """`omnirelay serve --no-sandbox` alone on CPU 0 (settings through OMNIRELAY_* variables), and
    `omnirelay sandbox smsc` and `omnirelay sandbox graph --pages` in their own processes on CPU 1.
    Provisioned as an operator would: the account with `omnirelay accounts create`, then through
    the HTTP API one Messenger application per simulated Page (`numbered_page`) with a scenario
    FACEBOOK (that application) then SMS, an SMPP connector to the SMSC simulator and its default
    route. Every process is stopped when the block ends, whatever happened."""
    pages = max(1, pages)
    ports: set[int] = set()
    while len(ports) < 3:
        ports.add(free_port())
    gw_port, graph_port, smsc_port = sorted(ports)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNIRELAY_")}
    env |= {
        "OMNIRELAY_SANDBOX": "false",
        "OMNIRELAY_HOST": "127.0.0.1",
        "OMNIRELAY_PORT": str(gw_port),
        "OMNIRELAY_DATA_DIR": str(db.data_dir),
        "OMNIRELAY_OPERATOR_TOKEN": OPERATOR_TOKEN,
        "OMNIRELAY_GRAPH_BASE_URL": f"http://127.0.0.1:{graph_port}",
    }
    if db.url:
        env["OMNIRELAY_DATABASE_URL"] = db.url
    omnirelay = [sys.executable, "-m", "omnirelay"]
    subprocess.run(
        [*omnirelay, "accounts", "create", BENCH_USER[0], "--password", BENCH_USER[1]],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    on_simulator_cpu = ["taskset", "-c", SIMULATOR_CPU]
    smsc_cmd = [*on_simulator_cpu, *omnirelay, "sandbox", "smsc", "--port", str(smsc_port)]
    smsc_cmd += ["--system-id", SMSC_USER[0], "--password", SMSC_USER[1]]
    smsc_cmd += ["--receipt-delay-s", f"{receipt_delay_s:g}"]
    gw_cmd = ["taskset", "-c", SERVER_CPU, *omnirelay, "serve", "--no-sandbox"]
    gw_url = f"http://127.0.0.1:{gw_port}"
    graph_cmd = [*on_simulator_cpu, *omnirelay, "sandbox", "graph", "--port", str(graph_port)]
    graph_cmd += ["--omnirelay-url", gw_url, "--pages", str(pages)]
    logs = {name: db.data_dir / f"{name}.log" for name in ("smsc", "graph", "server")}
    with (
        process(smsc_cmd, logs["smsc"]) as smsc,
        process(graph_cmd, logs["graph"]) as graph,
        process(gw_cmd, logs["server"], env) as gw,
    ):
        wait_listening(smsc, smsc_port, logs["smsc"])
        wait_listening(graph, graph_port, logs["graph"])
        srv = Server(gw, gw_port, logs["server"])
        _wait_up(srv, "/health")
        applications, scenarios = _provision(srv.base, pages, smsc_port)
        log(
            f"production: gateway pid {gw.pid} on CPU {SERVER_CPU}; graph pid {graph.pid} ({pages} Pages) "
            f"and SMSC pid {smsc.pid} on CPU {SIMULATOR_CPU}"
        )
        yield Production(srv, applications, scenarios, graph, smsc)
    # `process` stops them in reverse order: the gateway first, then the simulators


def _provision(base: str, pages: int, smsc_port: int) -> tuple[list[str], list[str]]:
    """Applications, scenarios, the connector and its route, through the API; the application and
    scenario keys."""
    operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    applications, scenarios = [], []
    with httpx.Client(base_url=base, timeout=30) as client:
        for i, page in enumerate(numbered_pages(pages)):
            app = _ok(
                client.post(
                    "/facebook/1/applications",
                    json={
                        "name": f"Bench page {i}",
                        "pageId": page.page_id,
                        "pageAccessToken": page.access_token,
                        "appSecret": page.app_secret,
                    },
                    headers=BENCH_HEADERS,
                )
            )
            applications.append(str(app["key"]))
            flow = [{"from": app["key"], "channel": "FACEBOOK"}, {"from": SMS_SENDER, "channel": "SMS"}]
            scenario = _ok(
                client.post(
                    "/omni/1/scenarios",
                    json={"name": f"Bench page {i}", "flow": flow, "default": i == 0},
                    headers=BENCH_HEADERS,
                )
            )
            scenarios.append(str(scenario["key"]))
        connector = {
            "name": CONNECTOR,
            "host": "127.0.0.1",
            "port": smsc_port,
            "systemId": SMSC_USER[0],
            "password": SMSC_USER[1],
            "window": 50,  # as the sandbox's connector
            "reconnectMinS": 0.2,
            "reconnectMaxS": 5.0,
        }
        _ok(client.post("/admin/1/connectors", json=connector, headers=operator))
        _ok(client.post("/admin/1/routes", json={"connector": CONNECTOR}, headers=operator))
        deadline = time.monotonic() + 30
        while True:
            r = client.get("/ready")
            if r.status_code == 200 and r.json()["checks"].get(f"smpp:{CONNECTOR}"):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the SMPP connector did not bind: {r.text}")
            time.sleep(0.1)
    return applications, scenarios


def register_person(prod: Production, index: int) -> str:
    """Register numbered Page `index`'s one person (`numbered_user`) in omnirelay as Meta would: a
    signed `messages` webhook from them to the Page's application. Their user key."""
    page, person = numbered_page(index), numbered_user(index)
    app_key = prod.applications[index]
    event = {
        "sender": {"id": person.psid},
        "recipient": {"id": page.page_id},
        "timestamp": int(time.time() * 1000),
        "message": {"mid": f"m_bench_register_{index}", "text": "Hello"},
    }
    raw = json.dumps(
        {"object": "page", "entry": [{"id": page.page_id, "time": event["timestamp"], "messaging": [event]}]}
    )
    signature = hmac.new(page.app_secret.encode(), raw.encode(), hashlib.sha256).hexdigest()
    with httpx.Client(base_url=prod.gateway.base, timeout=30) as client:
        r = client.post(
            f"/webhooks/facebook/{app_key}",
            content=raw,
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={signature}"},
        )
        r.raise_for_status()
        users = client.get(f"/facebook/1/applications/{app_key}/users", headers=BENCH_HEADERS)
        users.raise_for_status()
        (user,) = users.json()
    return str(user["key"])


def _wait_up(srv: Server, path: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if srv.proc.poll() is not None:
            raise RuntimeError(f"server exited: {srv.log_path.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(srv.base + path, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"server not up after {timeout_s} s: {srv.log_path.read_text()[-3000:]}")


# -- wrk --------------------------------------------------------------------------------------


@dataclass
class WrkResult:
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int


def wrk(url: str, body: bytes, *, seconds: float, connections: int = 64) -> WrkResult:
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        f.write(body)
        f.flush()
        cmd = [
            "taskset",
            "-c",
            LOAD_CPU,
            ensure_wrk(),
            "-t1",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--timeout",
            "10s",
            "-s",
            str(BENCH / "wrk" / "post.lua"),
            url,
        ]
        env = {**os.environ, "WRK_BODY": f.name, "WRK_AUTH": AUTH}
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    r = json.loads(line.removeprefix("WRKJSON "))
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    return WrkResult(r["requests"] / (r["duration_us"] / 1e6), r["p50_us"] / 1000, r["p99_us"] / 1000, errors)
