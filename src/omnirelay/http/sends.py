"""The send routes served as plain ASGI: the product's hot path.

`POST /facebook/1/single`, `/omni/1/advanced` and `/omni/1/text` are most of the traffic, and
Starlette's middleware, router, `Request` and `Response` cost more than accepting a send itself
(profiled: bench/README.md). `App.__call__` hands these three paths to `serve` before the Starlette
stack; everything else, and these paths with another method, goes through Starlette. The routes stay
registered with Starlette too (OpenAPI, 405s), and their endpoints run the same `accept`, so there
is one implementation: authentication, rate limit, media type, body limit, `Idempotency-Key`, the
one error table, counting per route.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import NamedTuple

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from omnirelay.domain.errors import OmnirelayError, ValidationFailed
from omnirelay.http import errors
from omnirelay.http.body import check_json, read_body, read_limited
from omnirelay.http.context import Services, services
from omnirelay.http.errors import Answer
from omnirelay.http.idempotency import idempotent
from omnirelay.ports import IdempotentRequest

log = logging.getLogger(__name__)

# (services, account, raw body, its Idempotency-Key if any) -> the 200 answer's body
Core = Callable[[Services, int, bytes, IdempotentRequest | None], Awaitable[bytes]]
ReadBody = Callable[[int], Awaitable[bytes]]


class Route(NamedTuple):
    core: Core
    counter: Callable[[int], None] | None  # counts the answer's status, when requests are counted


_JSON = (b"content-type", b"application/json")
MAX_IDEMPOTENCY_KEY = 200


async def accept(svc: Services, headers: Mapping[str, str], read: ReadBody, core: Core) -> Answer:
    """Authenticate, rate-limit, check the media type, read the body, run `core` (idempotently when the
    request has an `Idempotency-Key`). Errors are raised; the caller answers them from the table."""
    account_id = await svc.auth.authenticate(headers.get("authorization"))
    if svc.limiter is not None:
        svc.limiter.check(account_id)
    check_json(headers.get("content-type"))
    raw = await read(svc.max_body_bytes)
    key = headers.get("idempotency-key")
    if key is not None and len(key) > MAX_IDEMPOTENCY_KEY:  # the column's size
        raise ValidationFailed(
            field="Idempotency-Key", problem=f"must be at most {MAX_IDEMPOTENCY_KEY} characters"
        )
    if key and svc.idempotency is not None and svc.clock is not None:
        return await idempotent(
            svc.idempotency,
            svc.clock,
            account_id=account_id,
            key=key,
            raw=raw,
            handler=lambda idem: core(svc, account_id, raw, idem),
        )
    return Answer(200, await core(svc, account_id, raw, None))


# the request headers `accept` and `read_limited` look at (ASGI gives names in lower case)
_WANTED = frozenset((b"authorization", b"content-type", b"content-length", b"idempotency-key"))


async def serve(svc: Services, route: Route, scope: Scope, receive: Receive, send: Send) -> None:
    headers = {k.decode(): v.decode("latin-1") for k, v in scope["headers"] if k in _WANTED}
    try:
        answer = await accept(
            svc,
            headers,
            lambda limit: read_limited(receive, headers.get("content-length"), limit),
            route.core,
        )
    except ClientDisconnect:  # gone before its body was read: nobody to answer
        return
    except OmnirelayError as exc:
        answer = errors.answer(exc)
    except Exception:
        log.exception("unhandled error on POST %s", scope["path"])
        answer = errors.INTERNAL
    if route.counter is not None:
        route.counter(answer.status)
    await send_answer(send, answer)


async def send_answer(send: Send, answer: Answer) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": answer.status,
            "headers": [_JSON, (b"content-length", str(len(answer.body)).encode()), *answer.headers],
        }
    )
    await send({"type": "http.response.body", "body": answer.body})


async def via_starlette(request: Request, core: Core) -> Response:
    """The same route through Starlette (a path `App` does not take directly); errors are raised to
    Starlette's handlers, which answer from the same table."""
    answer = await accept(services(request), request.headers, lambda limit: read_body(request, limit), core)
    return answer.response()
