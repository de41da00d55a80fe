"""`python -m bench`: run the benchmark figures and print one table (see bench/README.md).

python -m bench                      # everything (about 20 minutes)
python -m bench --quick              # one short run of each figure, smaller volumes
python -m bench --only http,bulk     # a subset: http, bulk, e2e, failover, expiry, expiry-seen, backlog, smpp
python -m bench --backends sqlite    # skip PostgreSQL
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

from bench import figures
from bench.harness import BENCH, Figure, ensure_wrk, log, pg_available

ALL = ("http", "bulk", "e2e", "failover", "expiry", "expiry-seen", "backlog", "smpp")
NAMES = {"sqlite": "SQLite (durable, synchronous=FULL)", "pg": "PostgreSQL 127.0.0.1"}


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = ""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            mem = f", {int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
    system = f"{platform.system()} {platform.release()}"
    return f"{os.cpu_count()} cores ({model}){mem}, Python {platform.python_version()}, {system}"


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="one short run per figure, small volumes")
    parser.add_argument("--only", default=",".join(ALL), help=f"comma-separated subset of {','.join(ALL)}")
    parser.add_argument("--backends", default="sqlite,pg", help="sqlite,pg (pg skipped when unreachable)")
    parser.add_argument("--runs", type=int, default=None, help="runs per figure (default 3; quick 1)")
    parser.add_argument(
        "--seconds", type=float, default=None, help="seconds per wrk run (default 10; quick 3)"
    )
    parser.add_argument(
        "--e2e-messages", type=int, default=None, help="messages per end-to-end run (default 10000)"
    )
    parser.add_argument(
        "--e2e-rate",
        type=float,
        default=1000.0,
        help="end-to-end load offered for the latency row, msg/s (the target rate)",
    )
    parser.add_argument(
        "--e2e-capacity-rate",
        type=float,
        default=3000.0,
        help="end-to-end load offered for the capacity row, msg/s: above what the gateway can do, so "
        "that the figure is its throughput, not the offer",
    )
    parser.add_argument(
        "--e2e-pages",
        type=int,
        default=12,
        help="simulated Messenger Pages the end-to-end load is spread over (Meta paces each at 250/s: "
        "12 Pages let 3,000 msg/s through); 0: one Page",
    )
    parser.add_argument(
        "--backlog", type=int, default=None, help="queued messages for the memory figure (default 1M)"
    )
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "latest.md")
    args = parser.parse_args()
    only = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = set(only) - set(ALL)
    if unknown:
        parser.error(f"unknown figure(s): {', '.join(sorted(unknown))}")
    runs = args.runs or (1 if args.quick else 3)
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    e2e_n = args.e2e_messages or (2000 if args.quick else 10_000)
    backlog_n = args.backlog or (100_000 if args.quick else 1_000_000)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if "pg" in backends and not pg_available():
        log("PostgreSQL not reachable on 127.0.0.1:5432: skipping it")
        backends.remove("pg")
    ensure_wrk()
    started = time.monotonic()

    rows: list[list[str]] = []
    notes: list[str] = []

    def row(
        figure: str, backend: str, value: str, p50: str = "", p99: str = "", share: str = "", target: str = ""
    ) -> None:
        rows.append([figure, backend, value, p50, p99, share, target])

    if "http" in only:
        res = figures.http(backends, runs, seconds)
        for path in figures.ENDPOINTS:
            ceiling = res[("ceiling", path)]
            for backend in ["ceiling", *backends]:
                f = res[(backend, path)]
                share = "" if backend == "ceiling" else f"{f.rate.median / ceiling.rate.median:.0%}"
                target = (
                    ""
                    if backend != "sqlite"
                    else ("≥ 30 % " + ("✅" if f.rate.median >= 0.3 * ceiling.rate.median else "❌"))
                )
                row(
                    f"`POST {path}` accepted/s, 64 conn.",
                    "ceiling (bare ASGI)" if backend == "ceiling" else NAMES[backend],
                    f.rate.show(),
                    f.p50.show("{:.1f}"),
                    f.p99.show("{:.1f}"),
                    share,
                    target,
                )
                if f.errors:
                    notes.append(f"{backend} {path}: {f.errors} wrk errors (non-2xx, timeouts)")
    if "bulk" in only:
        for rejected, what in ((False, "destinations"), (True, "destinations all rejected (`{to: {}}`)")):
            for backend, f in figures.bulk(backends, runs, rejected=rejected).items():
                row(
                    f"`POST /omni/1/advanced`, 10,000 {what}: time to 200 (s)",
                    NAMES[backend],
                    f.show("{:.3f}"),
                    target="< 1 s " + ("✅" if f.median < 1 else "❌"),
                )
    if "e2e" in only:
        pages = args.e2e_pages
        over = f"over {pages} Pages" if pages else "one Page"
        what = f"{e2e_n:,} msgs by phone, {over} (Messenger rejects → SMS → receipt → report)"
        kinds = (
            # capacity: offered above what the gateway takes, so the figure is its throughput
            ("capacity", args.e2e_capacity_rate, "cap", "queueing included", True),
            ("latency", args.e2e_rate, "e2e", "200 ms of it the SMSC's receipt delay", False),
        )
        for kind, rate, tag, latency_note, has_target in kinds:
            for backend, e in figures.e2e(backends, runs, e2e_n, rate, pages=pages, tag=tag).items():
                target = "≥ 1,000/s " + ("✅" if e.rate.median >= 1000 else "❌") if has_target else ""
                row(
                    f"end to end, {kind}: {what}, offered at {rate:,.0f} msg/s, msg/s finished; "
                    f"latency accept → final report (ms), {latency_note}",
                    NAMES[backend],
                    e.rate.show(),
                    e.p50.show(),
                    e.p99.show(),
                    target=target,
                )
                if e.delivered != e.total:
                    notes.append(f"end to end {kind} {backend}: {e.delivered}/{e.total} DELIVERED_TO_HANDSET")
    if "failover" in only:
        n = 200 if args.quick else 500
        for backend, e in figures.e2e(backends, runs, n, 50.0, batch=10, tag="fo").items():
            row(
                "failover decision: Messenger rejection → SMS submitted (ms), 50 msg/s offered",
                NAMES[backend],
                "",
                e.failover_p50.show(),
                e.failover_p99.show(),
                target="p99 < 100 ms " + ("✅" if e.failover_p99.median < 100 else "❌"),
            )
    if "expiry" in only:
        n = 200 if args.quick else 1000
        for backend, (p50, p99) in figures.expiry(backends, runs, n, rate=50.0, batch=10).items():
            row(
                "failover decision: Messenger validity expiry (30 s) → SMS submitted (ms), "
                f"{n:,} msgs/run offered at 50 msg/s",
                NAMES[backend],
                "",
                p50.show(),
                p99.show(),
                target="p99 < 100 ms " + ("✅" if p99.median < 100 else "❌"),
            )
        for backend, (p50, p99) in figures.expiry(backends, runs, n).items():
            row(
                "failover on validity expiry, burst: a run's messages sent at once expire together → "
                f"SMS submitted (ms), {n:,} msgs/run (they drain through one SMPP bind)",
                NAMES[backend],
                "",
                p50.show(),
                p99.show(),
            )
    if "expiry-seen" in only:
        n = 200 if args.quick else 1000
        for backend, (p50, p99) in figures.expiry(
            backends, runs, n, rate=50.0, batch=10, criterion="SEEN"
        ).items():
            row(
                "failover decision: Messenger validity expiry (30 s) while waiting for SEEN → SMS submitted "
                f"(ms), {n:,} msgs/run offered at 50 msg/s",
                NAMES[backend],
                "",
                p50.show(),
                p99.show(),
                target="p99 < 100 ms " + ("✅" if p99.median < 100 else "❌"),
            )
    if "backlog" in only:
        marks = figures.backlog(backlog_n)
        rss = Figure([m[1] for m in marks])
        row(
            f"server RSS with a queued backlog (SMSC down), MiB at {', '.join(f'{m[0]:,}' for m in marks)}",
            NAMES["sqlite"],
            " / ".join(f"{m[1]:.0f}" for m in marks),
            target="flat " + ("✅" if max(rss.values) - rss.values[1] < 0.25 * rss.values[1] else "❌"),
        )

    if "smpp" in only:
        for window, sm in figures.smpp(runs, seconds).items():
            row(
                f"SMPP `submit_sm`/s on one bind, window {window} (`SmppSender` alone vs the SMSC "
                "simulator in its own process; delivery receipts decoded and acknowledged)",
                "no database",
                sm.rate.show(),
                sm.p50.show("{:.1f}"),
                sm.p99.show("{:.1f}"),
                target="≥ 1,000/s " + ("✅" if sm.rate.median >= 1000 else "❌"),
            )
    header = ["figure", "backend", "value: median [min–max]", "p50 ms", "p99 ms", "of ceiling", "target"]
    lines = [
        f"Machine: {machine()}.",
        f"Command: `uv run python -m bench {' '.join(sys.argv[1:])}`".rstrip()
        + f" ({runs} run(s) per figure, "
        f"{seconds:g} s per wrk run, wrk -t1 -c64 pinned to CPU 1, "
        "server pinned to CPU 0 for the HTTP figures). "
        f"Date: {time.strftime('%Y-%m-%d')}; took {(time.monotonic() - started) / 60:.1f} min.",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
        *("| " + " | ".join(r) + " |" for r in rows),
    ]
    if notes:
        lines += ["", *(f"- {n}" for n in notes)]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    log(f"written to {args.out}")


if __name__ == "__main__":
    main()
