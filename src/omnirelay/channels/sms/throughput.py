"""Per-connector submit rate: a token bucket in its GCRA form (one timestamp, no refill task).

`reserve(now_s)` books the next slot and says how long to wait for it. A caller that would have to
wait longer than it is willing to is told so without booking, so an over-full connector answers
`ChannelUnavailable(retry_after_s=…)` at once instead of queueing sends for minutes.
"""

from __future__ import annotations


class TokenBucket:
    def __init__(self, *, rate_per_s: float, burst: float | None = None) -> None:
        self._burst = burst
        self._tat_s = 0.0  # theoretical arrival time of the next conforming send
        self.set_rate(rate_per_s)

    def set_rate(self, rate_per_s: float) -> None:
        """A new rate from the next booking on (this node's share of a cluster-wide rate)."""
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be > 0")
        self.rate_per_s = rate_per_s
        # A tenth of a second's worth by default: smooth, but no stall on a single send.
        self.burst = max(1.0, self._burst if self._burst is not None else rate_per_s / 10)
        self._interval_s = 1.0 / rate_per_s
        self._tolerance_s = (self.burst - 1.0) * self._interval_s

    def delay_s(self, now_s: float) -> float:
        """How long a send starting now would wait for its slot (nothing is booked)."""
        tat = max(self._tat_s, now_s)
        return max(0.0, tat - self._tolerance_s - now_s)

    def reserve(self, now_s: float) -> float:
        """Book the next slot; returns the wait in seconds (0 when a token is available)."""
        tat = max(self._tat_s, now_s)
        wait_s = max(0.0, tat - self._tolerance_s - now_s)
        self._tat_s = tat + self._interval_s
        return wait_s
