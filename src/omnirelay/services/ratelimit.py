"""Per-account request rate (docs/api.md#rate-limit): a token bucket per account, in this process's memory.

Each node limits on its own: with N nodes an account may reach N times the rate. A shared limit
would need a shared counter (PostgreSQL or Redis); not built.
"""

from __future__ import annotations

import time

from omnirelay.domain.errors import RateLimited


class RateLimiter:
    def __init__(self, rate_per_s: float, burst: int) -> None:
        self._rate = rate_per_s
        self._burst = float(max(burst, 1))
        self._buckets: dict[int, tuple[float, float]] = {}  # account -> (tokens, at)

    def check(self, account_id: int, now: float | None = None) -> None:
        """Take one token for this account, or raise `RateLimited` with the wait until the next one."""
        at = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(account_id, (self._burst, at))
        tokens = min(self._burst, tokens + (at - last) * self._rate)
        if tokens < 1.0:
            self._buckets[account_id] = (tokens, at)
            raise RateLimited(retry_after_s=(1.0 - tokens) / self._rate)
        self._buckets[account_id] = (tokens - 1.0, at)
