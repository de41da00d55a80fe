"""SMPP throughput: submit_sm per second on one bind, the `SmppSender` alone against the SMSC simulator.

`python -m bench.smpp --port P --window W --seconds S` (started by `figures.smpp`, pinned to one
core, with the simulator in its own process on the other core): one connector, window W, one
`SmppSender.send` per message from 2 × W concurrent tasks (single-part GSM text, registered
delivery on, so the simulator also sends a delivery receipt per message, which the session decodes,
hands to the sink and acknowledges). No database: the sink only counts. Prints one JSON line:
accepted/s after a 1 s warm-up, receipts/s, and the p50/p99 of `send` in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from datetime import timedelta

from omnirelay.channels.sms.config import SmppConnectorConfig
from omnirelay.channels.sms.sender import SmppSender
from omnirelay.clock import SystemClock
from omnirelay.domain.messages import AddressKind, Channel, Outbound, Receipt, SmsContent

SYSTEM_ID = "omnirelay"
PASSWORD = "sandbox"  # the local simulator's credential (omnirelay sandbox smsc)


class CountingSink:
    def __init__(self) -> None:
        self.count = 0

    async def record(self, receipts: Sequence[Receipt]) -> None:
        self.count += len(receipts)


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else float("nan")


async def measure(port: int, window: int, seconds: float, warmup_s: float = 1.0) -> dict[str, float]:
    clock = SystemClock()
    sink = CountingSink()
    config = SmppConnectorConfig(
        name="bench", host="127.0.0.1", port=port, system_id=SYSTEM_ID, password=PASSWORD, window=window
    )
    sender = SmppSender([config], [], sink, clock)
    await sender.start()
    if not await sender.wait_bound(10):
        raise SystemExit("could not bind to the SMSC simulator")
    content = SmsContent("Hello by SMS")
    accepted = 0
    latencies: list[float] = []
    measuring = False
    stop = time.perf_counter() + warmup_s + seconds

    async def worker(w: int) -> None:
        nonlocal accepted
        i = 0
        while time.perf_counter() < stop:
            i += 1
            outbound = Outbound(
                message_id=f"m{w}-{i}",
                account_id=1,
                channel=Channel.SMS,
                sender="InfoSMS",
                to=f"41{(w * 1_000_000 + i) % 10**8:08d}7",  # ends in 7: no sandbox suffix rule
                to_kind=AddressKind.PHONE,
                content=content,
                expires_at=clock.now() + timedelta(hours=1),
            )
            t0 = time.perf_counter()
            await sender.send(outbound)
            if measuring:
                accepted += 1
                latencies.append((time.perf_counter() - t0) * 1000)

    tasks = [asyncio.create_task(worker(w)) for w in range(2 * window)]
    await asyncio.sleep(warmup_s)
    measuring, receipts_at_start, t_start = True, sink.count, time.perf_counter()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t_start
    receipts = sink.count - receipts_at_start
    await sender.stop()
    return {
        "rate": accepted / elapsed,
        "receipts_rate": receipts / elapsed,
        "p50_ms": _percentile(latencies, 50),
        "p99_ms": _percentile(latencies, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    result = asyncio.run(measure(args.port, args.window, args.seconds))
    print("SMPPJSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
