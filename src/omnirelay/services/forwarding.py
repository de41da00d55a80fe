"""Forwarding inbound Messenger messages to applications' `webhookUrl`, durably, with retries.

The webhook route queues forwards in the store's outbox (in the same transaction as the event's
dedupe key); this loop posts them through the `WebhookPoster` port. A 2xx answer ends a forward;
anything else (or no answer) is retried with exponential backoff and jitter until
`give_up_after_s` after it was queued, then it is dropped with a warning. State lives in the
store, so a restart resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from omnirelay.domain.errors import ChannelUnavailable
from omnirelay.ports import Clock, ForwardRecord, ForwardStore, WebhookPoster
from omnirelay.services.activity import Activity
from omnirelay.services.rounds import run_rounds

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ForwardPolicy:
    base_s: float = 1.0
    factor: float = 2.0
    max_s: float = 300.0
    give_up_after_s: float = 24 * 3600.0
    lease_s: float = 60.0  # longer than the poster's timeout

    def delay_s(self, tries: int, jitter: float) -> float:
        """After the `tries`-th failed try: base × factor^(tries-1), capped, ±20 % jitter."""
        return min(self.base_s * self.factor ** max(tries - 1, 0), self.max_s) * (0.8 + 0.4 * jitter)


class Forwarder:
    def __init__(
        self,
        store: ForwardStore,
        poster: WebhookPoster,
        clock: Clock,
        policy: ForwardPolicy | None = None,
        *,
        batch: int = 100,
        concurrency: int = 50,
        idle_poll_s: float = 0.25,
    ) -> None:
        self._store = store
        self._poster = poster
        self._clock = clock
        self._policy = policy or ForwardPolicy()
        self._batch = batch
        self._slots = asyncio.Semaphore(concurrency)
        self._idle_poll_s = idle_poll_s
        self._wake = asyncio.Event()
        self._stopping = False
        self._activity = Activity()

    def wake(self) -> None:
        """Forwards were queued: look now rather than at the next poll."""
        self._wake.set()

    @property
    def activity(self) -> tuple[bool, int]:
        """A round under way, and the count of changes (`services.activity`; `Gateway.until_idle`)."""
        return self._activity.reading

    async def run(self) -> None:
        await run_rounds("forwarding", self._round, self._wake, self._idle_poll_s, lambda: self._stopping)

    async def stop(self, grace_s: float) -> None:
        """Finish the round under way, then end `run` (the supervisor waits `grace_s` for it)."""
        self._stopping = True
        self._wake.set()

    async def _round(self) -> float:
        return 0.0 if await self.run_once() >= self._batch else self._idle_poll_s

    async def run_once(self) -> int:
        with self._activity.round() as took_work:
            due = await self._store.claim_forwards(self._clock.now(), self._policy.lease_s, self._batch)
            if due:
                took_work()
                await asyncio.gather(*(self._post(f) for f in due))
            return len(due)

    async def _post(self, forward: ForwardRecord) -> None:
        tries = forward.tries + 1
        async with self._slots:
            try:
                status = await self._poster.post_json(forward.url, forward.body)
                problem = None if 200 <= status < 300 else f"HTTP {status}"
            except ChannelUnavailable as exc:
                problem = exc.reason
            except Exception as exc:
                log.exception("forwarding to application %s failed unexpectedly", forward.application_key)
                problem = type(exc).__name__
        now = self._clock.now()
        if problem is None:
            log.info("inbound forwarded to application %s (try %d)", forward.application_key, tries)
            await self._store.settle_forward(forward, tries, None)
            return
        give_up_at = forward.created_at + timedelta(seconds=self._policy.give_up_after_s)
        if now >= give_up_at:
            log.warning(
                "gave up forwarding inbound %d to application %s after %d tries (%s)",
                forward.id,
                forward.application_key,
                tries,
                problem,
            )
            await self._store.settle_forward(forward, tries, None)
            return
        retry_at: datetime = min(
            now + timedelta(seconds=self._policy.delay_s(tries, random.random())),  # noqa: S311 - jitter
            give_up_at,
        )
        log.info(
            "forwarding to application %s failed (%s); try %d, retrying at %s",
            forward.application_key,
            problem,
            tries,
            retry_at.isoformat(),
        )
        await self._store.settle_forward(forward, tries, retry_at)
