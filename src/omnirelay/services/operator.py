"""The operator token that guards `/admin/1/...` (docs/api.md#operator-api): `Authorization: Bearer <token>`.

The comparison is constant-time: both sides are hashed to a fixed length first, then compared
with `hmac.compare_digest`, so neither the token's content nor its length leaks through timing.
An empty configured token admits nobody.
"""

from __future__ import annotations

import hashlib
import hmac

from omnirelay.domain.errors import Unauthorized


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


class OperatorGuard:
    def __init__(self, token: str) -> None:
        self._enabled = bool(token)
        self._digest = _digest(token)

    def check(self, header: str | None) -> None:
        scheme, _, value = (header or "").strip().partition(" ")
        presented = _digest(value.strip())
        matches = hmac.compare_digest(presented, self._digest)
        if not (self._enabled and matches and scheme.lower() == "bearer"):
            raise Unauthorized()
