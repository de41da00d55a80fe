"""Pushes of reports to `notifyUrl` (docs/api.md#report-pushes).

Reports waiting to be pushed live in the database (state PUSH) and are claimed with a lease, so a
crash never loses one. Reports due for the same URL go out together as one `{"results": [...]}`.
A failed push is retried after `1 min + 1 min × n²` (n = tries so far) for a configurable period;
a final report that never gets through is queued for `GET …/reports` instead, so nothing is
lost. Intermediate reports that never get through are dropped (the final one still comes).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from omnirelay.domain.errors import ChannelUnavailable
from omnirelay.ports import (
    NO_METRICS,
    Clock,
    DuePush,
    Metrics,
    PushSettlement,
    PushStore,
    ReportState,
    WebhookPoster,
)
from omnirelay.services.activity import Activity
from omnirelay.services.rounds import run_rounds

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PushPolicy:
    base_s: float = 60.0
    step_s: float = 60.0
    give_up_after_s: float = 24 * 3600.0
    lease_s: float = 60.0
    batch: int = 500
    per_post: int = 100

    def delay_s(self, tries: int) -> float:
        return self.base_s + self.step_s * tries * tries


class Notifier:
    def __init__(
        self,
        store: PushStore,
        poster: WebhookPoster,
        clock: Clock,
        policy: PushPolicy | None = None,
        *,
        idle_poll_s: float = 0.25,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._poster = poster
        self._clock = clock
        self._policy = policy or PushPolicy()
        self._idle_poll_s = idle_poll_s
        self._wake = asyncio.Event()
        self._stopping = False
        self._activity = Activity()

    def wake(self) -> None:
        self._wake.set()

    @property
    def activity(self) -> tuple[bool, int]:
        """A round under way, and the count of changes (`services.activity`; `Gateway.until_idle`)."""
        return self._activity.reading

    async def run(self) -> None:
        await run_rounds("push", self._round, self._wake, self._idle_poll_s, lambda: self._stopping)

    async def stop(self, grace_s: float) -> None:
        """Finish the round under way, then end `run` (the supervisor waits `grace_s` for it)."""
        self._stopping = True
        self._wake.set()

    async def _round(self) -> float:
        return 0.0 if await self.run_once() >= self._policy.batch else self._idle_poll_s

    async def run_once(self) -> int:
        with self._activity.round() as took_work:
            return await self._push_due(took_work)

    async def _push_due(self, took_work: Callable[[], None]) -> int:
        p = self._policy
        due = await self._store.claim_pushes(self._clock.now(), p.lease_s, p.batch)
        if not due:
            return 0
        took_work()
        by_url: dict[str, list[DuePush]] = defaultdict(list)
        for push in due:
            by_url[push.url].append(push)
        posts = [
            group[i : i + p.per_post] for group in by_url.values() for i in range(0, len(group), p.per_post)
        ]
        settled = await asyncio.gather(*(self._post(chunk) for chunk in posts))
        await self._store.settle_pushes([s for chunk in settled for s in chunk])
        return len(due)

    async def _post(self, chunk: list[DuePush]) -> list[PushSettlement]:
        url = chunk[0].url
        body = b'{"results":[' + b",".join(p.body for p in chunk) + b"]}"
        try:
            status = await self._poster.post_json(url, body)
            problem = None if 200 <= status < 300 else f"HTTP {status}"
        except ChannelUnavailable as exc:
            problem = exc.reason
        if problem is None:
            for _ in chunk:
                self._metrics.push("ok")
            return [PushSettlement(p.report_id, ReportState.DONE, p.tries + 1, token=p.token) for p in chunk]
        now = self._clock.now()
        out = []
        for p in chunk:
            tries = p.tries + 1
            retry_at = now + timedelta(seconds=self._policy.delay_s(tries))
            if (retry_at - p.created_at).total_seconds() <= self._policy.give_up_after_s:
                self._metrics.push("failed")
                log.info(
                    "push to notifyUrl failed (%s); retry %d",
                    problem,
                    tries,
                    extra={"message_id": p.message_id},
                )
                out.append(PushSettlement(p.report_id, ReportState.PUSH, tries, retry_at, p.token))
            elif p.kind == "FINAL":
                self._metrics.push("given_up")
                log.warning(
                    "push never succeeded; report queued for pull", extra={"message_id": p.message_id}
                )
                out.append(PushSettlement(p.report_id, ReportState.PULL, tries, token=p.token))
            else:
                self._metrics.push("given_up")
                log.warning(
                    "intermediate report dropped after failed pushes", extra={"message_id": p.message_id}
                )
                out.append(PushSettlement(p.report_id, ReportState.DONE, tries, token=p.token))
        return out
