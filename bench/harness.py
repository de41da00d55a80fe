"""Processes and measurements: servers under test, wrk, databases, statistics."""

from __future__ import annotations

import contextlib
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


def page_scenario_key(i: int) -> str:
    """The scenario `bench.server --pages` creates for its i-th extra Page."""
    return f"BENCHPAGE{i:03d}"


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
    pages: int = 0,
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
        if pages:
            cmd += ["--pages", str(pages)]
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
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
