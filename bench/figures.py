"""Each figure of the benchmark: how it is driven and what it reads back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.harness import (
    BENCH_HEADERS,
    HEADERS,
    LOAD_CPU,
    ROOT,
    SERVER_CPU,
    SMS_SENDER,
    Database,
    Figure,
    Production,
    database,
    free_port,
    log,
    percentile,
    process,
    production,
    register_person,
    server,
    wait_listening,
    wrk,
)
from omnirelay import sandbox_data as sandbox

SINGLE = json.dumps(
    {"from": sandbox.APP_KEY, "to": sandbox.USER_KEY, "message": {"type": "TEXT", "text": "Hello, World!"}}
).encode()
ADVANCED = json.dumps(
    {
        "destinations": [{"to": {"phoneNumber": "41793026727"}}],
        "facebook": {"text": "Hello from Messenger"},
        "sms": {"text": "Hello by SMS"},
    }
).encode()
ENDPOINTS = {"/facebook/1/single": SINGLE, "/omni/1/advanced": ADVANCED}
DELIVERED_TO_HANDSET = 5


def phone(i: int) -> str:
    """A distinct Swiss mobile number per i < 10,000,000, in international form (+41 7x: no trunk
    prefix '0' after the country code, which phonenumbers would have to parse away).
    Ends in 7: no sandbox SMSC suffix rule (0014, 0058, 0011, 0005, 0003, 0008) applies."""
    return f"417{i:07d}7"


def omni_body(first: int, count: int, bulk_id: str | None = None, **extra: object) -> bytes:
    body: dict[str, object] = {
        "destinations": [{"to": {"phoneNumber": phone(first + i)}} for i in range(count)],
        "facebook": {"text": "Hello from Messenger"},
        "sms": {"text": "Hello by SMS"},
        **extra,
    }
    if bulk_id:
        body["bulkId"] = bulk_id
    return json.dumps(body).encode()


# -- 1. accepted sends per second -------------------------------------------------------------


@dataclass
class HttpFigures:
    rate: Figure = field(default_factory=Figure)
    p50: Figure = field(default_factory=Figure)
    p99: Figure = field(default_factory=Figure)
    errors: int = 0


def http(backends: list[str], runs: int, seconds: float) -> dict[tuple[str, str], HttpFigures]:
    out: dict[tuple[str, str], HttpFigures] = {}
    for backend in ["ceiling", *backends]:
        if backend == "ceiling":
            ctx = server(None)
        else:
            dbctx = database(backend)
            db = dbctx.__enter__()
            ctx = server(db, setup="intake")
        try:
            with ctx as srv:
                for path, body in ENDPOINTS.items():
                    figs = out[(backend, path)] = HttpFigures()
                    wrk(srv.base + path, body, seconds=min(2.0, seconds))  # warm-up
                    for run in range(runs):
                        r = wrk(srv.base + path, body, seconds=seconds)
                        figs.rate.add(r.rate)
                        figs.p50.add(r.p50_ms)
                        figs.p99.add(r.p99_ms)
                        figs.errors += r.errors
                        log(
                            f"http {backend} {path} run {run + 1}: {r.rate:,.0f}/s "
                            f"p50 {r.p50_ms:.1f} ms p99 {r.p99_ms:.1f} ms errors {r.errors}"
                        )
        finally:
            if backend != "ceiling":
                dbctx.__exit__(None, None, None)
    return out


# -- 2. one request with 10,000 destinations --------------------------------------------------


def wait_done(db: Database, where: str, expected: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    done = 0
    while time.monotonic() < deadline:
        done = int(db.query(f"SELECT count(*) FROM messages WHERE done_at IS NOT NULL AND {where}")[0][0])
        if done >= expected:
            break
        time.sleep(0.25)
    return done


def rejected_body(count: int, bulk_id: str) -> bytes:
    """`count` destinations without any address: each is rejected at acceptance (and still gets its
    message row and final report)."""
    return json.dumps(
        {"destinations": [{"to": {}}] * count, "sms": {"text": "Hello by SMS"}, "bulkId": bulk_id}
    ).encode()


def bulk(
    backends: list[str], runs: int, destinations: int = 10_000, rejected: bool = False
) -> dict[str, Figure]:
    """One request of `destinations`, accepted ones (distinct numbers) or, with `rejected`, ones all
    rejected at acceptance."""
    out: dict[str, Figure] = {}
    for backend in backends:
        fig = out[backend] = Figure()
        # the dispatcher is stopped, as for the HTTP figures: this times accepting, not sending
        with database(backend) as db, server(db, setup="intake") as srv, httpx.Client(timeout=120) as client:
            for run in range(runs):
                if rejected:
                    body = rejected_body(destinations, f"rejected{run}")
                else:
                    body = omni_body(run * destinations, destinations, bulk_id=f"bulk{run}")
                t0 = time.perf_counter()
                r = client.post(srv.base + "/omni/1/advanced", content=body, headers=HEADERS)
                elapsed = time.perf_counter() - t0
                r.raise_for_status()
                answered = r.json()["messages"]
                assert len(answered) == destinations
                assert rejected == (answered[0]["status"]["groupName"] == "REJECTED")
                fig.add(elapsed)
                kind = "rejected" if rejected else "accepted"
                log(f"bulk {backend} run {run + 1}: {destinations:,} {kind} destinations in {elapsed:.3f} s")
    return out


# -- 3. end to end, and failover on rejection -------------------------------------------------


@dataclass
class E2eFigures:
    rate: Figure = field(default_factory=Figure)
    p50: Figure = field(default_factory=Figure)
    p99: Figure = field(default_factory=Figure)
    failover_p50: Figure = field(default_factory=Figure)
    failover_p99: Figure = field(default_factory=Figure)
    delivered: int = 0
    total: int = 0


async def paced_send(
    base: str, bodies: list[bytes], interval_s: float, headers: dict[str, str] = HEADERS
) -> None:
    """Open loop: one request every `interval_s`, whatever the previous answers' latency."""
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=64)) as client:
        tasks = []
        start = time.perf_counter()
        for i, body in enumerate(bodies):
            delay = start + i * interval_s - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(
                asyncio.create_task(client.post(base + "/omni/1/advanced", content=body, headers=headers))
            )
        for r in await asyncio.gather(*tasks):
            r.raise_for_status()


@contextlib.contextmanager
def on_cpu(cpu: str) -> Iterator[None]:
    """This process (the load generator) pinned to `cpu` for the block."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {int(cpu)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def e2e(
    backends: list[str], runs: int, n: int, rate: float, batch: int = 100, tag: str = "e2e", pages: int = 0
) -> dict[str, E2eFigures]:
    """The gateway in production mode, alone on CPU 0, the Graph API and SMSC simulators in their
    own processes on CPU 1 (`harness.production`), the paced sender in this process, pinned to CPU 1
    while it sends. `pages` > 0: that many simulated Pages, the requests round-robin over their
    scenarios; 0: one Page, through the account's default scenario."""
    out: dict[str, E2eFigures] = {}
    for backend in backends:
        figs = out[backend] = E2eFigures()
        with database(backend) as db, production(db, pages) as prod:
            srv = prod.gateway
            for run in range(runs):
                prefix = f"{tag}{run}-"
                bodies = [
                    omni_body(
                        run * n + k,
                        min(batch, n - k),
                        bulk_id=f"{prefix}{k}",
                        **({"scenarioKey": prod.scenarios[k // batch % pages]} if pages else {}),
                    )
                    for k in range(0, n, batch)
                ]
                with on_cpu(LOAD_CPU):
                    asyncio.run(paced_send(srv.base, bodies, batch / rate, BENCH_HEADERS))
                where = f"bulk_id LIKE '{prefix}%'"
                done = wait_done(db, where, n, 120)
                rows = db.query(
                    "SELECT m.created_at, m.done_at, m.status_id, a0.done_at, a1.sent_at FROM messages m "
                    "JOIN attempts a0 ON a0.message_pk = m.id AND a0.step_index = 0 "
                    "LEFT JOIN attempts a1 ON a1.message_pk = m.id AND a1.step_index = 1 "
                    f"WHERE m.{where}"
                )
                finished = [r for r in rows if r[1] is not None]
                latency = [r[1] - r[0] for r in finished]
                failover = [r[4] - r[3] for r in rows if r[4] is not None and r[3] is not None]
                span_s = (max(r[1] for r in finished) - min(r[0] for r in rows)) / 1000
                figs.rate.add(len(finished) / span_s)
                figs.p50.add(percentile(latency, 50))
                figs.p99.add(percentile(latency, 99))
                figs.failover_p50.add(percentile(failover, 50))
                figs.failover_p99.add(percentile(failover, 99))
                figs.delivered += sum(1 for r in finished if r[2] == DELIVERED_TO_HANDSET)
                figs.total += n
                log(
                    f"{tag} {backend} run {run + 1}: {done}/{n} final, {len(finished) / span_s:,.0f} msg/s, "
                    f"p50 {percentile(latency, 50):.0f} ms p99 {percentile(latency, 99):.0f} ms; "
                    f"rejection→SMS p50 {percentile(failover, 50):.0f} ms "
                    f"p99 {percentile(failover, 99):.0f} ms"
                )
    return out


# -- 4. failover on validity expiry -----------------------------------------------------------


def expiry(
    backends: list[str],
    runs: int,
    n: int,
    validity_s: int = 30,
    gap_s: float = 5.0,
    rate: float | None = None,
    batch: int = 100,
    criterion: str | None = None,
) -> dict[str, tuple[Figure, Figure]]:
    """`runs` batches with a 30 s Messenger validity to a person who never gets a delivery receipt:
    each expires and fails over to SMS; expiry → SMS submit latency. The production set-up, as for
    `e2e` (`harness.production`, one simulated Page): the Page's one person (`numbered_user`) is
    registered through a signed webhook; the simulated Page posts no webhooks, so nothing is ever
    delivered on Messenger. `rate` None: each batch as fast as the API takes it, `gap_s` apart (a
    burst: the messages expire together); otherwise offered at `rate` msg/s in requests of `batch`,
    batches back to back (below capacity, so that the figure is the decision latency, as for the
    rejection figure). The sender is pinned to CPU 1 (the gateway's is CPU 0) while it sends.
    `criterion`: the messages go through a scenario whose Messenger step has this success
    criterion (docs/api.md#success-criteria), e.g. SEEN: the step waits for a read until it expires."""
    out: dict[str, tuple[Figure, Figure]] = {}
    tag = ("exp" if rate is None else "expp") + (criterion or "").lower()
    scenario_key: str | None = None

    def body(user_key: str, run: int, k: int) -> bytes:
        return json.dumps(
            {
                **({"scenarioKey": scenario_key} if scenario_key else {}),
                "bulkId": f"{tag}{run}-{k}",
                "destinations": [
                    {"to": {"facebookUserKey": user_key, "phoneNumber": phone(run * n + k + i)}}
                    for i in range(min(batch, n - k))
                ],
                "facebook": {
                    "text": "never delivered",
                    "validityPeriod": validity_s,
                    "validityPeriodTimeUnit": "SECONDS",
                },
                "sms": {"text": "Hello by SMS"},
            }
        ).encode()

    for backend in backends:
        p50, p99 = out[backend] = (Figure(), Figure())
        with database(backend) as db, production(db, 1) as prod:
            base = prod.gateway.base
            user_key = register_person(prod, 0)
            if criterion is not None:
                scenario_key = criterion_scenario(prod, criterion)
            with on_cpu(LOAD_CPU):
                if rate is None:
                    with httpx.Client(timeout=60) as client:
                        for run in range(runs):
                            for k in range(0, n, batch):
                                client.post(
                                    base + "/omni/1/advanced",
                                    content=body(user_key, run, k),
                                    headers=BENCH_HEADERS,
                                ).raise_for_status()
                            if run + 1 < runs:
                                time.sleep(gap_s)
                else:
                    bodies = [body(user_key, run, k) for run in range(runs) for k in range(0, n, batch)]
                    asyncio.run(paced_send(base, bodies, batch / rate, BENCH_HEADERS))
            for run in range(runs):
                where = f"bulk_id LIKE '{tag}{run}-%'"
                wait_done(db, where, n, validity_s + 60)
                rows = db.query(
                    "SELECT m.created_at, a1.sent_at FROM messages m JOIN attempts a1 "
                    "ON a1.message_pk = m.id AND a1.step_index = 1 "
                    f"WHERE m.{where} AND a1.sent_at IS NOT NULL"
                )
                lat = [r[1] - (r[0] + validity_s * 1000) for r in rows]
                p50.add(percentile(lat, 50))
                p99.add(percentile(lat, 99))
                how = "burst" if rate is None else f"{rate:g} msg/s"
                log(
                    f"expiry ({how}{', ' + criterion if criterion else ''}) {backend} run {run + 1}: "
                    f"{len(lat)}/{n} failed over; expiry→SMS p50 "
                    f"{percentile(lat, 50):.0f} ms p99 {percentile(lat, 99):.0f} ms"
                )
    return out


def criterion_scenario(prod: Production, criterion: str) -> str:
    """A scenario like the bench Page's, its Messenger step with `criterion`; its key."""
    flow = [
        {"from": prod.applications[0], "channel": "FACEBOOK", "successCriterion": criterion},
        {"from": SMS_SENDER, "channel": "SMS"},
    ]
    with httpx.Client(base_url=prod.gateway.base, timeout=30) as client:
        r = client.post(
            "/omni/1/scenarios", json={"name": f"bench {criterion}", "flow": flow}, headers=BENCH_HEADERS
        )
        r.raise_for_status()
        return str(r.json()["key"])


# -- 5. memory with a backlog -----------------------------------------------------------------


def backlog(total: int, per_request: int = 10_000, marks: int = 4) -> list[tuple[int, float, float]]:
    """Queue `total` SMS-only messages while the SMSC is down; RSS (MiB) at 0 and every total/marks.
    Returns (queued, rss_mib, seconds for the last request)."""
    out: list[tuple[int, float, float]] = []
    with database("sqlite") as db, server(db, setup="smsc-down") as srv, httpx.Client(timeout=300) as client:
        r = client.post(
            srv.base + "/omni/1/scenarios",
            json={"name": "SMS only", "flow": [{"from": sandbox.SMS_SENDER, "channel": "SMS"}]},
            headers=HEADERS,
        )
        r.raise_for_status()
        key = r.json()["key"]
        time.sleep(1)
        out.append((0, srv.rss_mib(), 0.0))
        log(f"backlog: 0 queued, RSS {out[-1][1]:.0f} MiB")
        step = total // marks
        queued = 0
        while queued < total:
            count = min(per_request, total - queued)
            body = {
                "scenarioKey": key,
                "destinations": [{"to": {"phoneNumber": phone(queued + i)}} for i in range(count)],
                "sms": {"text": "queued while the SMSC is down"},
            }
            t0 = time.perf_counter()
            client.post(srv.base + "/omni/1/advanced", json=body, headers=HEADERS).raise_for_status()
            took = time.perf_counter() - t0
            queued += count
            if queued % step == 0:
                time.sleep(2)
                out.append((queued, srv.rss_mib(), took))
                log(f"backlog: {queued:,} queued, RSS {out[-1][1]:.0f} MiB (last request {took:.2f} s)")
    return out


# -- 6. SMPP: submit_sm per second per bind ---------------------------------------------------


@dataclass
class SmppFigures:
    rate: Figure = field(default_factory=Figure)
    receipts_rate: Figure = field(default_factory=Figure)
    p50: Figure = field(default_factory=Figure)
    p99: Figure = field(default_factory=Figure)


def _smpp_run(port: int, window: int, seconds: float) -> dict[str, float]:
    """One `bench.smpp` run, pinned to CPU 0; its SMPPJSON line."""
    cmd = ["taskset", "-c", SERVER_CPU, sys.executable, "-m", "bench.smpp"]
    cmd += ["--port", str(port), "--window", str(window), "--seconds", f"{seconds:g}"]
    res = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True, timeout=120)
    line = next(x for x in res.stdout.splitlines() if x.startswith("SMPPJSON "))
    out: dict[str, float] = json.loads(line.removeprefix("SMPPJSON "))
    return out


def smpp(runs: int, seconds: float, windows: tuple[int, ...] = (10, 50)) -> dict[int, SmppFigures]:
    """`bench.smpp` (the `SmppSender` alone, pinned to CPU 0) against `omnirelay sandbox smsc` in its
    own process (pinned to CPU 1), one bind, for each window size."""
    out: dict[int, SmppFigures] = {}
    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="omnirelay-bench-"))
    cli = str(Path(sys.executable).parent / "omnirelay")
    smsc_cmd = ["taskset", "-c", LOAD_CPU, cli, "sandbox", "smsc", "--port", str(port)]
    try:
        with process(smsc_cmd, log_dir / "smsc.log") as smsc:
            wait_listening(smsc, port, log_dir / "smsc.log")
            for window in windows:
                figs = out[window] = SmppFigures()
                for run in range(runs):
                    r = _smpp_run(port, window, seconds)
                    figs.rate.add(r["rate"])
                    figs.receipts_rate.add(r["receipts_rate"])
                    figs.p50.add(r["p50_ms"])
                    figs.p99.add(r["p99_ms"])
                    log(
                        f"smpp window {window} run {run + 1}: {r['rate']:,.0f} submit_sm/s, "
                        f"{r['receipts_rate']:,.0f} receipts/s, "
                        f"p50 {r['p50_ms']:.1f} ms p99 {r['p99_ms']:.1f} ms"
                    )
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)
    return out
