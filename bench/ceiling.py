"""The ceiling: a bare ASGI callable, no framework, no storage.

It reads the same JSON bodies as `POST /facebook/1/single` and `POST /omni/1/advanced`, decodes
them with msgspec into the same request types omnirelay uses, and answers the same response
shape (a fresh UUID4 `messageId` per destination). Served by the same server configuration as
omnirelay (uvicorn, uvloop, httptools, one worker), it is the most a Python server on this
machine can do for these requests; omnirelay's figures are reported as a share of it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import msgspec

from omnirelay.domain.statuses import MESSAGE_ACCEPTED, PENDING_ACCEPTED
from omnirelay.http.types import (
    FacebookSingleIn,
    FacebookSingleOut,
    OmniAdvancedIn,
    OmniMessageOut,
    OmniOut,
    StatusOut,
)
from omnirelay.services.reports import status_json

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_single = msgspec.json.Decoder(FacebookSingleIn)
_advanced = msgspec.json.Decoder(OmniAdvancedIn)
_encoder = msgspec.json.Encoder()
_PENDING = StatusOut(**status_json(PENDING_ACCEPTED))
_ACCEPTED = StatusOut(**status_json(MESSAGE_ACCEPTED))
_HEADERS = [(b"content-type", b"application/json")]


async def _body(receive: Receive) -> bytes:
    chunks = []
    more = True
    while more:
        event = await receive()
        chunks.append(event.get("body", b""))
        more = event.get("more_body", False)
    return b"".join(chunks)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    status, payload = 200, b'{"status":"ok"}'
    if path == "/facebook/1/single":
        single = _single.decode(await _body(receive))
        payload = _encoder.encode(FacebookSingleOut(single.to, _PENDING, 1, str(uuid.uuid4())))
    elif path == "/omni/1/advanced":
        omni = _advanced.decode(await _body(receive))
        out = [OmniMessageOut(d.to, _ACCEPTED, str(uuid.uuid4())) for d in omni.destinations]
        bulk = omni.bulkId or (str(uuid.uuid4()) if len(out) > 1 else None)
        payload = _encoder.encode(OmniOut(out, bulk))
    elif path != "/health":
        status, payload = 404, b"{}"
    await send({"type": "http.response.start", "status": status, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": payload})
