"""Wake-ups between nodes on PostgreSQL (docs/architecture.md#wake-ups): a node's notification wakes
the other nodes, not itself, and many at once come as few."""

from __future__ import annotations

import asyncio

import pytest

from omnirelay.store.engine import make_engine
from omnirelay.store.wakeups import PgWakeups
from tests.waiting import until

pytestmark = pytest.mark.postgres


async def test_a_notification_wakes_the_other_nodes_not_its_own(pg_database: str) -> None:
    engines = [make_engine(pg_database) for _ in range(3)]
    woken = {"a": 0, "b": 0, "c": 0}

    def waker(name: str) -> PgWakeups:
        def wake() -> None:
            woken[name] += 1

        return PgWakeups(engines["abc".index(name)], name, on_wake=wake)

    nodes = {name: waker(name) for name in "abc"}
    tasks = [asyncio.create_task(n.run()) for n in nodes.values()]
    try:
        await until(lambda: all(n.listening.is_set() for n in nodes.values()), what="all listening")
        nodes["a"].notify()
        await until(lambda: woken["b"] == 1 and woken["c"] == 1, what="b and c woken")
        assert woken["a"] == 0  # its own notification came back too, and was not a wake-up
        for _ in range(100):  # a burst of commits on b
            nodes["b"].notify()
        await until(lambda: woken["a"] >= 1 and woken["c"] == 1 + woken["a"], what="a and c woken by b")
        burst = woken["a"]
        assert burst < 50  # coalesced: far fewer notifications than commits
        nodes["c"].notify()
        await until(lambda: woken["b"] == 2 and woken["a"] == burst + 1, what="a and b woken by c")
        assert woken["c"] == 1 + burst  # c did not wake itself
    finally:
        for n in nodes.values():
            await n.stop(grace_s=1)
        await asyncio.gather(*tasks)
        for e in engines:
            await e.dispose()
