"""The server under test, started by the bench in its own process.

`python -m bench.server --port P --data-dir D [--setup …]` runs omnirelay exactly as
`omnirelay serve` does (the same `build_app` and uvicorn configuration: uvloop, httptools, one
worker, lifespan on, no access log, requests counted per route) and then applies a benchmark set-up
to the in-process sandbox simulators:

* `plain`: the sandbox as shipped;
* `intake`: the sandbox with the dispatcher loop stopped, so that accepted messages stay queued
  and the figure measures accepting (validate, authenticate, commit, answer) alone: the in-process
  channel simulators would otherwise share the server's one core with the API;
* `smsc-down`: the SMSC simulator is stopped, so every SMS waits, queued, for a bind.


`--ceiling` serves `bench.ceiling:app` with the same uvicorn configuration instead.
`OMNIRELAY_DATABASE_URL` picks PostgreSQL, as for `omnirelay serve`.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from omnirelay import logs
from omnirelay.bootstrap import Gateway, build_app, run_server
from omnirelay.config import Settings


def setup_hook(setup: str) -> Callable[[Gateway], Awaitable[None]]:
    """What `build_app` runs once the gateway is up, for a benchmark set-up."""

    async def after_start(gateway: Gateway) -> None:
        if setup == "intake":
            await gateway.supervisor.stop("dispatcher", grace_s=0)
        elif setup == "smsc-down":
            assert gateway.smsc_simulator is not None
            await gateway.smsc_simulator.stop()

    return after_start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, default=Path("./data"))
    parser.add_argument("--setup", choices=["plain", "intake", "smsc-down"], default="plain")
    parser.add_argument("--ceiling", action="store_true")
    parser.add_argument("--log-level", default=None)
    args = parser.parse_args()
    app: Any
    overrides: dict[str, Any] = {"port": args.port, "data_dir": args.data_dir}
    if args.log_level:
        overrides["log_level"] = args.log_level
    settings = Settings(**overrides)
    if args.ceiling:
        app = "bench.ceiling:app"
    else:
        logs.configure(settings.log_level, settings.log_json)
        app = build_app(settings, setup_hook(args.setup))
    run_server(app, "127.0.0.1", args.port, grace_s=settings.shutdown_grace_s)


if __name__ == "__main__":
    main()
