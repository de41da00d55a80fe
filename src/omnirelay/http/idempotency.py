"""`Idempotency-Key` on POSTs that send (SPEC D4): same key and body within 24 h replays the first
answer and creates nothing; the same key with another body is 409."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from omnirelay.domain.errors import Conflict
from omnirelay.http.body import read_body
from omnirelay.http.context import services

Handler = Callable[[], Awaitable[Response]]


async def idempotent(request: Request, account_id: int, handler: Handler) -> Response:
    key = request.headers.get("idempotency-key")
    svc = services(request)
    if not key or svc.idempotency is None or svc.clock is None:
        return await handler()
    raw = await read_body(request, svc.max_body_bytes)
    digest = hashlib.sha256(raw).hexdigest()
    kept = await svc.idempotency.claim(account_id, key, digest, svc.clock.now())
    if kept is not None:
        if kept.body_digest != digest:
            raise Conflict("Idempotency-Key was already used with a different request body")
        if kept.status_code == 0:
            raise Conflict("A request with this Idempotency-Key is still being processed")
        return Response(
            kept.response,
            kept.status_code,
            media_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )
    try:
        response = await handler()
    except BaseException:
        await svc.idempotency.release(account_id, key)
        raise
    if response.status_code == 200:
        await svc.idempotency.complete(account_id, key, response.status_code, bytes(response.body))
    else:
        await svc.idempotency.release(account_id, key)
    return response
