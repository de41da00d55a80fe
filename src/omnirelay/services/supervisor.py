"""The supervisor: runs the gateway's background tasks, restarts one that ends, says which are down.

A worker loop (`services.rounds`) survives a failed round by itself; what reaches the supervisor
is a bug or a failure outside any round (the writer's loop, a loop's own set-up). Such a task is
logged with its traceback and restarted after a backoff (doubling from `restart_min_s` up to
`restart_max_s`, back to the minimum once it has run for `healthy_after_s`); while it waits for its
restart it is listed by `down()`, which turns `/ready` to 503. Stopping runs in reverse order of
starting (the writer, started first, stops last), each task first asked to finish its round
(`Stoppable.stop`, within a grace period) and cancelled only after that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger(__name__)


class Stoppable(Protocol):
    async def stop(self, grace_s: float) -> None:
        """Finish what is under way within `grace_s` and return; the run coroutine then ends."""
        ...


@dataclass
class _Watched:
    name: str
    run: Callable[[], Awaitable[None]]
    stoppable: Stoppable | None
    task: asyncio.Task[None] | None = None
    retired: bool = False  # being stopped: an end is not a crash
    restarts: int = 0


@dataclass
class Supervisor:
    restart_min_s: float = 0.1
    restart_max_s: float = 10.0
    healthy_after_s: float = 30.0
    _watched: list[_Watched] = field(default_factory=list)
    _down: set[str] = field(default_factory=set)

    def spawn(
        self, name: str, run: Callable[[], Awaitable[None]], stoppable: Stoppable | None = None
    ) -> None:
        """Run `run()` as the task `name` until stopped; restart it whenever it ends otherwise."""
        watched = _Watched(name, run, stoppable)
        watched.task = asyncio.create_task(self._watch(watched), name=name)
        self._watched.append(watched)

    def down(self) -> list[str]:
        """The tasks that ended and wait for their restart."""
        return sorted(self._down)

    def names(self) -> list[str]:
        """The tasks running or waiting for a restart, in the order they were spawned."""
        return [w.name for w in self._watched]

    def restarts(self, name: str) -> int:
        return sum(w.restarts for w in self._watched if w.name == name)

    async def _watch(self, w: _Watched) -> None:
        loop = asyncio.get_running_loop()
        delay = self.restart_min_s
        while True:
            started = loop.time()
            try:
                await w.run()
            except asyncio.CancelledError:
                raise
            except Exception:
                if w.retired:
                    return
                log.exception("task %s crashed; restarting in %.1f s", w.name, delay)
            else:
                if w.retired:
                    return
                log.error("task %s ended unexpectedly; restarting in %.1f s", w.name, delay)
            self._down.add(w.name)
            try:
                if loop.time() - started >= self.healthy_after_s:
                    delay = self.restart_min_s
                await asyncio.sleep(delay)  # the backoff before a restart, not a synchronisation
                delay = min(max(delay * 2, self.restart_min_s), self.restart_max_s)
            finally:
                self._down.discard(w.name)
            if w.retired:
                return
            w.restarts += 1

    async def stop(self, *names: str, grace_s: float = 10.0) -> None:
        """Stop the named tasks (all when none is named), in reverse order of spawning: each is asked
        to finish (`Stoppable.stop`) within `grace_s`, then cancelled if it still runs."""
        chosen = [w for w in reversed(self._watched) if not names or w.name in names]
        for w in chosen:
            w.retired = True
            running = w.name not in self._down  # else it waits for a restart: nothing to finish
            if w.stoppable is not None and running:
                try:
                    await w.stoppable.stop(grace_s)
                except Exception:
                    log.exception("error while stopping %s", w.name)
            task = w.task
            if task is not None and not task.done() and w.stoppable is not None and running:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(task), timeout=grace_s)
            if task is not None and not task.done():
                task.cancel()
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._watched.remove(w)
