"""`Idempotency-Key` on POSTs that send (SPEC D4): same key and body within 24 h replays the first
answer and creates nothing; the same key with another body is 409."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

from omnirelay.domain.errors import Conflict
from omnirelay.http.errors import Answer
from omnirelay.ports import Clock, IdempotencyStore

_REPLAYED = ((b"idempotent-replayed", b"true"),)


async def idempotent(
    store: IdempotencyStore,
    clock: Clock,
    *,
    account_id: int,
    key: str,
    raw: bytes,
    handler: Callable[[], Awaitable[bytes]],
) -> Answer:
    """Run `handler` (the 200 answer's body, or an error raised) once per key and body."""
    digest = hashlib.sha256(raw).hexdigest()
    kept = await store.claim(account_id, key, digest, clock.now())
    if kept is not None:
        if kept.body_digest != digest:
            raise Conflict("Idempotency-Key was already used with a different request body")
        if kept.status_code == 0:
            raise Conflict("A request with this Idempotency-Key is still being processed")
        return Answer(kept.status_code, kept.response, _REPLAYED)
    try:
        body = await handler()
    except BaseException:
        await store.release(account_id, key)
        raise
    await store.complete(account_id, key, 200, body)
    return Answer(200, body)
