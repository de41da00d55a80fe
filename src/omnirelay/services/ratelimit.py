"""Per-account request rate (docs/api.md#rate-limit): a token bucket per account, in this process's memory.

With several nodes each one limits at its share of the rate (`scale`, set by cluster membership:
docs/architecture.md#cluster-wide-budgets), so that the nodes together keep to it.
"""

from __future__ import annotations

import time

from omnirelay.domain.errors import RateLimited


class RateLimiter:
    def __init__(self, rate_per_s: float, burst: int) -> None:
        self._base = (rate_per_s, float(max(burst, 1)))
        self._rate, self._burst = self._base
        self._buckets: dict[int, tuple[float, float]] = {}  # account -> (tokens, at)

    def scale(self, share: float) -> None:
        """Limit at `share` of the configured rate and burst (at least one request of burst)."""
        rate, burst = self._base
        self._rate, self._burst = rate * share, max(1.0, burst * share)
        self._buckets = {k: (min(tokens, self._burst), at) for k, (tokens, at) in self._buckets.items()}

    def check(self, account_id: int, now: float | None = None) -> None:
        """Take one token for this account, or raise `RateLimited` with the wait until the next one."""
        at = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(account_id, (self._burst, at))
        tokens = min(self._burst, tokens + (at - last) * self._rate)
        if tokens < 1.0:
            self._buckets[account_id] = (tokens, at)
            raise RateLimited(retry_after_s=(1.0 - tokens) / self._rate)
        self._buckets[account_id] = (tokens - 1.0, at)
