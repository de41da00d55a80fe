"""`Idempotency-Key` on POSTs that send (docs/api.md#idempotency): same key and body within 24 h replays the
first
answer and creates nothing; the same key with another body is 409.

The key and the answer are kept in the transaction that commits the request's messages (the
handler passes the request on to the store), so a request that fails, or a process that dies,
before that commit leaves the key free for the retry, and one that committed is replayed."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

from omnirelay.domain.errors import Conflict
from omnirelay.http.errors import Answer
from omnirelay.ports import Clock, IdempotencyStore, IdempotentAnswer, IdempotentRequest, KeyClaimed

_REPLAYED = ((b"idempotent-replayed", b"true"),)


def _replay(kept: IdempotentAnswer, digest: str) -> Answer:
    if kept.body_digest != digest:
        raise Conflict("Idempotency-Key was already used with a different request body")
    if kept.status_code == 0:  # kept by an earlier version, whose answer never came
        raise Conflict("A request with this Idempotency-Key is still being processed")
    return Answer(kept.status_code, kept.response, _REPLAYED)


async def idempotent(
    store: IdempotencyStore,
    clock: Clock,
    *,
    account_id: int,
    key: str,
    raw: bytes,
    handler: Callable[[IdempotentRequest], Awaitable[bytes]],
) -> Answer:
    """Run `handler` (the 200 answer's body, or an error raised) once per key and body."""
    digest = hashlib.sha256(raw).hexdigest()
    now = clock.now()
    kept = await store.lookup(account_id, key, now)
    if kept is None:
        try:
            return Answer(200, await handler(IdempotentRequest(account_id, key, digest, now)))
        except KeyClaimed:  # a concurrent request with this key committed first: its answer
            kept = await store.lookup(account_id, key, now)
            if kept is None:  # kept and expired since: cannot happen within a request's life
                raise Conflict("A request with this Idempotency-Key is still being processed") from None
    return _replay(kept, digest)
