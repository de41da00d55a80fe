"""`python -m bench.console_search`: the console's message search at 1,000,000 stored messages
(docs/console.md#search-and-indexes), on SQLite and PostgreSQL.

A fresh database per backend, migrated as the gateway migrates it, filled with synthetic finished
messages (10 accounts, account 1 holding half; a week of them, newest last; 1,000 to a bulk; 100,000
destinations; 95 % delivered, 4 % undeliverable, 1 % rejected), then analyzed. Each search shape is
timed through `SqlConsoleStore.search`, as the console calls it, `--repeat` times: median and max
of one page (50 rows). Nothing is asserted; the table is printed.

    uv run python -m bench.console_search                       # 1,000,000 messages, both backends
    uv run python -m bench.console_search --messages 100000 --backends sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.harness import database, pg_available
from omnirelay.domain.statuses import STATUSES, StatusGroup
from omnirelay.ports import ConsoleQuery
from omnirelay.store.console import SqlConsoleStore
from omnirelay.store.engine import make_engine
from omnirelay.store.migrate import migrate
from omnirelay.store.tables import accounts

ACCOUNTS = 10
WEEK_MS = 7 * 24 * 3600 * 1000
CHUNK = 20_000
COLUMNS = (
    "account_id", "message_id", "bulk_id", "api", "to_json", "plan", "phase", "step_index", "tries",
    "step_deadline", "version", "claims", "status_id", "error_id", "channel", "sent_to", "sent_from",
    "text", "message_count", "created_at", "sent_at", "done_at", "intermediate_report", "notify",
)  # fmt: skip


def rows(n: int, start_ms: int) -> Iterator[tuple[Any, ...]]:
    for i in range(n):
        account = 1 if i % 2 == 0 else 2 + (i // 2) % (ACCOUNTS - 1)
        created = start_ms + i * WEEK_MS // n
        status, error = (18, 1) if i % 100 == 8 else (9, 1) if i % 25 == 4 else (5, 0)
        yield (
            account, f"bench-{i:08d}", f"bulk-{i // 1000}", "OMNI", "{}", "[]", "DONE", 0, 1,
            created + 60_000, 1, 0, status, error, "SMS" if i % 5 else "FACEBOOK",
            f"4179{(i * 7919) % 100_000:07d}", "InfoSMS", "bench", 1, created, created + 100,
            created + 300, False, False,
        )  # fmt: skip


async def fill(url: str, n: int, start_ms: int) -> float:
    """Insert `n` messages through the driver in large batches; seconds taken."""
    engine = make_engine(url)
    await migrate(engine)
    began = time.perf_counter()
    async with engine.begin() as conn:
        await conn.execute(
            accounts.insert(),
            [
                {"username": f"bench{a}", "password_hash": "-", "created_at": start_ms}
                for a in range(1, ACCOUNTS + 1)
            ],
        )
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            batch: list[tuple[Any, ...]] = []
            for row in rows(n, start_ms):
                batch.append(row)
                if len(batch) == CHUNK:
                    await driver.copy_records_to_table("messages", records=batch, columns=COLUMNS)
                    batch = []
            if batch:
                await driver.copy_records_to_table("messages", records=batch, columns=COLUMNS)
            await driver.execute("ANALYZE messages")
    else:
        path = url.split("///", 1)[1]
        conn = sqlite3.connect(path)
        marks = ", ".join("?" for _ in COLUMNS)
        with conn:
            conn.executemany(
                f"INSERT INTO messages ({', '.join(COLUMNS)}) VALUES ({marks})", rows(n, start_ms)
            )
        conn.execute("ANALYZE")
        conn.close()
    await engine.dispose()
    return time.perf_counter() - began


def shapes(n: int, start_ms: int) -> list[tuple[str, int | None, ConsoleQuery]]:
    rejected = tuple(s.id for s in STATUSES.values() if s.group is StatusGroup.REJECTED)
    expired = tuple(s.id for s in STATUSES.values() if s.group is StatusGroup.EXPIRED)
    last_hour = datetime.fromtimestamp((start_ms + WEEK_MS) / 1000, UTC) - timedelta(hours=1)
    middle = start_ms + WEEK_MS // 2
    some = n // 2 + 2  # an even row: account 1's
    return [
        ("account: newest page", 1, ConsoleQuery()),
        ("account: a page in the middle of the week (cursor)", 1, ConsoleQuery(before=(middle, n))),
        ("operator: newest page, every account", None, ConsoleQuery()),
        ("account: by message id", 1, ConsoleQuery(message_id=f"bench-{some:08d}")),
        ("operator: by message id", None, ConsoleQuery(message_id=f"bench-{some:08d}")),
        ("account: by bulk id", 1, ConsoleQuery(bulk_id=f"bulk-{some // 1000}")),
        ("account: by destination", 1, ConsoleQuery(to=f"4179{(some * 7919) % 100_000:07d}")),
        ("operator: by destination", None, ConsoleQuery(to=f"4179{(some * 7919) % 100_000:07d}")),
        ("account: channel FACEBOOK", 1, ConsoleQuery(channel="FACEBOOK")),
        ("account: status REJECTED (1 %)", 1, ConsoleQuery(status_ids=rejected)),
        ("account: status REJECTED, last hour", 1, ConsoleQuery(status_ids=rejected, since=last_hour)),
        # no message has it: the walk reads every one of the account's messages (the worst case)
        ("account: status EXPIRED (none)", 1, ConsoleQuery(status_ids=expired)),
        ("account: status EXPIRED (none), last hour", 1, ConsoleQuery(status_ids=expired, since=last_hour)),
    ]


async def measure(url: str, n: int, start_ms: int, repeat: int) -> list[tuple[str, float, float, int]]:
    engine = make_engine(url)
    console = SqlConsoleStore(engine)
    out = []
    for name, account_id, query in shapes(n, start_ms):
        await console.search(account_id, query)  # warm: the first read of a page from disk
        took = []
        found = 0
        for _ in range(repeat):
            began = time.perf_counter()
            page = await console.search(account_id, query)
            took.append((time.perf_counter() - began) * 1000)
            found = len(page.rows)
        out.append((name, statistics.median(took), max(took), found))
    now = datetime.fromtimestamp((start_ms + WEEK_MS) / 1000, UTC)
    for name, account_id in (
        ("overview, last 60 minutes: account", 1),
        ("overview, last 60 minutes: operator", None),
    ):
        took = []
        for _ in range(repeat):
            began = time.perf_counter()
            found_overview = await console.overview(account_id, now - timedelta(minutes=60), now)
            took.append((time.perf_counter() - began) * 1000)
        accepted = sum(a for _, a, _ in found_overview.minutes)
        out.append((name, statistics.median(took), max(took), accepted))
    await engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,pg")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    start_ms = int(time.time() * 1000) - WEEK_MS
    for kind in args.backends.split(","):
        if kind == "pg" and not pg_available():
            print("PostgreSQL not reachable: skipped")
            continue
        with database(kind) as db:
            url = db.url or f"sqlite+aiosqlite:///{db.data_dir / 'omnirelay.sqlite3'}"
            filled = asyncio.run(fill(url, args.messages, start_ms))
            results = asyncio.run(measure(url, args.messages, start_ms, args.repeat))
        head = f"{kind}: {args.messages:,} messages (filled in {filled:.0f} s)"
        print(f"\n{head}, one page of 50, {args.repeat} runs\n")
        print("| search | median ms | max ms | rows (overview: messages) |")
        print("| --- | ---: | ---: | ---: |")
        for name, median, worst, found in results:
            print(f"| {name} | {median:.1f} | {worst:.1f} | {found} |")


if __name__ == "__main__":
    main()
