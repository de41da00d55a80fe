"""Per-Page pacing for the Graph sender: token buckets, throttling pauses and channel-wide pauses.

Internal to `channels.messenger`. All of it is process memory: each omnirelay node paces its own
sends at its share of the rates (`PageGates.scale`: 1/N of them with N live nodes,
docs/architecture.md#cluster-wide-budgets). A throttle met here is kept (`learnt`) to be told to
the other nodes, and theirs are applied here (`throttled_elsewhere`); the channel-wide pauses each
node learns from its own next error. Meta's
limits are generous (about 300 calls/s per Page for text, docs/channels.md#pacing-and-rate-limits) so the
defaults stay
below them.

* `TokenBucket` makes a send wait for capacity instead of failing (loop time, `asyncio.sleep`).
* `PageGate` remembers two kinds of pause per Page, both in the sender's `Clock` time so tests can
  step over them:
  - throttled (rate-limit error or `X-Business-Use-Case-Usage` asking to wait): sends raise
    `ChannelUnavailable` with the remaining wait, without an HTTP call;
  - closed (a channel-wide error such as a bad token): sends raise `MessageRejected` with the
    original status and error, without an HTTP call, so messages fail over at once;
  - closed to phone numbers (Customer Matching refused): the same, for sends by phone number only.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec

from omnirelay.domain.errors import ChannelUnavailable, MessageRejected
from omnirelay.domain.statuses import ErrorCode, Status
from omnirelay.ports import MessengerPageState


class TokenBucket:
    """An async token bucket: `acquire()` waits until a token is free. Waiters are served in order."""

    def __init__(self, rate_per_s: float, *, burst: float | None = None) -> None:
        self._burst = burst
        self._updated_at: float | None = None
        self._lock = asyncio.Lock()
        self._tokens = math.inf  # a full bucket, once `set_rate` caps it
        self.set_rate(rate_per_s)

    def set_rate(self, rate_per_s: float) -> None:
        """A new rate from now on (this node's share of a cluster-wide rate); tokens saved beyond
        the new capacity are dropped."""
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        if self._updated_at is not None:
            self._refill(asyncio.get_running_loop().time())
        self._rate_per_s = rate_per_s
        self._capacity = self._burst if self._burst is not None else max(1.0, rate_per_s)
        self._tokens = min(self._tokens, self._capacity)

    def _refill(self, now: float) -> None:
        if self._updated_at is not None:
            self._tokens = min(self._capacity, self._tokens + (now - self._updated_at) * self._rate_per_s)
        self._updated_at = now

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        async with self._lock:
            self._refill(loop.time())
            if self._tokens < 1:
                await asyncio.sleep((1 - self._tokens) / self._rate_per_s)
                self._refill(loop.time())
            self._tokens -= 1


class _Usage(msgspec.Struct):
    estimated_time_to_regain_access: float = 0
    call_count: float = 0
    total_cputime: float = 0
    total_time: float = 0


def regain_access_after_s(header_value: str | None) -> float | None:
    """Seconds to wait according to `X-Business-Use-Case-Usage`, or None if it asks for no wait.

    The header maps business ids to lists of usage objects; `estimated_time_to_regain_access` is in
    minutes. A malformed header is ignored (it only ever slows us down).
    """
    if not header_value:
        return None
    try:
        usage = msgspec.json.decode(header_value, type=dict[str, list[_Usage]])
    except msgspec.DecodeError:  # ValidationError is a subclass
        return None
    minutes = max((u.estimated_time_to_regain_access for items in usage.values() for u in items), default=0)
    return minutes * 60.0 if minutes > 0 else None


def retry_after_header_s(header_value: str | None) -> float | None:
    """The HTTP `Retry-After` header in seconds (the delta-seconds form only)."""
    if not header_value:
        return None
    try:
        seconds = float(header_value.strip())
    except ValueError:
        return None
    return seconds if seconds > 0 else None


@dataclass(slots=True)
class _Closure:
    until: datetime
    status: Status
    error: ErrorCode
    reason: str


class PageGate:
    """One Page's pacing state: two buckets and the pauses."""

    def __init__(self, *, text_rate_per_s: float, media_rate_per_s: float) -> None:
        self.text = TokenBucket(text_rate_per_s)
        self.media = TokenBucket(media_rate_per_s)
        self._throttled_until: datetime | None = None
        self._closure: _Closure | None = None
        self._phone_closure: _Closure | None = None

    def check(self, now: datetime, page_id: str, *, by_phone: bool = False) -> None:
        """Raise if the Page is paused (for sends by phone number too when `by_phone`); otherwise
        return (and forget pauses that ended)."""
        closure = self._closure
        if closure is not None:
            if now < closure.until:
                raise MessageRejected(
                    status=closure.status,
                    error=closure.error,
                    reason=f"page {page_id} paused until {closure.until.isoformat()} after: {closure.reason}",
                    pause_channel=True,
                )
            self._closure = None
        phone = self._phone_closure
        if by_phone and phone is not None:
            if now < phone.until:
                raise MessageRejected(
                    status=phone.status,
                    error=phone.error,
                    reason=(
                        f"page {page_id} sends by phone number stopped until {phone.until.isoformat()}"
                        f" after: {phone.reason}"
                    ),
                )
            self._phone_closure = None
        if self._throttled_until is not None:
            if now < self._throttled_until:
                wait_s = (self._throttled_until - now).total_seconds()
                raise ChannelUnavailable(
                    reason=f"page {page_id} throttled by the Graph API for {wait_s:.1f} s more",
                    retry_after_s=wait_s,
                )
            self._throttled_until = None

    def state(self, now: datetime, page_id: str) -> MessengerPageState:
        """The pauses still running at `now`."""

        def live(c: _Closure | None) -> _Closure | None:
            return c if c is not None and now < c.until else None

        closure, phone = live(self._closure), live(self._phone_closure)
        throttled = self._throttled_until if self._throttled_until and now < self._throttled_until else None
        return MessengerPageState(
            page_id=page_id,
            paused_until=closure.until if closure else None,
            paused_reason=closure.reason if closure else None,
            phone_paused_until=phone.until if phone else None,
            phone_paused_reason=phone.reason if phone else None,
            throttled_until=throttled,
        )

    def throttle(self, now: datetime, wait_s: float) -> None:
        until = now + timedelta(seconds=wait_s)
        if self._throttled_until is None or until > self._throttled_until:
            self._throttled_until = until

    def close(self, now: datetime, pause_s: float, *, status: Status, error: ErrorCode, reason: str) -> None:
        self._closure = _Closure(now + timedelta(seconds=pause_s), status, error, reason)

    def close_to_phones(
        self, now: datetime, pause_s: float, *, status: Status, error: ErrorCode, reason: str
    ) -> None:
        self._phone_closure = _Closure(now + timedelta(seconds=pause_s), status, error, reason)


class PageGates:
    """The gates of every Page this sender has used, created on first use."""

    def __init__(self, *, text_rate_per_s: float, media_rate_per_s: float) -> None:
        self._text_rate_per_s = text_rate_per_s
        self._media_rate_per_s = media_rate_per_s
        self._share = 1.0
        self._gates: dict[str, PageGate] = {}
        self._learnt: dict[str, datetime] = {}  # throttles met by this node, until told to the others

    def states(self, now: datetime) -> list[MessengerPageState]:
        return [gate.state(now, page_id) for page_id, gate in sorted(self._gates.items())]

    def __getitem__(self, page_id: str) -> PageGate:
        gate = self._gates.get(page_id)
        if gate is None:
            gate = PageGate(
                text_rate_per_s=self._text_rate_per_s * self._share,
                media_rate_per_s=self._media_rate_per_s * self._share,
            )
            self._gates[page_id] = gate
        return gate

    def throttle(self, page_id: str, now: datetime, wait_s: float) -> None:
        """Throttle the Page after Meta asked this node to wait; kept to tell the other nodes."""
        self[page_id].throttle(now, wait_s)
        until = now + timedelta(seconds=wait_s)
        if until > self._learnt.get(page_id, until - timedelta(seconds=1)):
            self._learnt[page_id] = until

    def learnt(self, now: datetime) -> dict[str, float]:
        """The throttles met here since the last call: Page -> seconds still to wait."""
        out = {p: (until - now).total_seconds() for p, until in self._learnt.items() if until > now}
        self._learnt.clear()
        return out

    def throttled_elsewhere(self, now: datetime, waits: dict[str, float]) -> None:
        """Throttles other nodes met: Page -> seconds still to wait."""
        for page_id, wait_s in waits.items():
            self[page_id].throttle(now, wait_s)

    def scale(self, share: float) -> None:
        """Pace every Page at `share` of its rates: this node's part of the per-Page budget
        (docs/architecture.md#cluster-wide-budgets)."""
        self._share = share
        for gate in self._gates.values():
            gate.text.set_rate(self._text_rate_per_s * share)
            gate.media.set_rate(self._media_rate_per_s * share)
