"""While serving, the cyclic GC runs with the server's thresholds and skips what start-up built;
both are undone when the server stops (test processes start many servers)."""

from __future__ import annotations

import gc

from omnirelay.bootstrap import GC_THRESHOLDS
from omnirelay.config import Settings
from tests.e2e.conftest import start_server


async def test_serving_tunes_the_gc_and_stopping_restores_it(settings: Settings) -> None:
    before = gc.get_threshold()
    assert before != GC_THRESHOLDS
    server, task, _app = await start_server(settings)
    try:
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
    finally:
        server.should_exit = True
        await task
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
