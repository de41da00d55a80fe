"""Reading and decoding request bodies: size limit, media type, msgspec validation."""

from __future__ import annotations

from typing import TypeVar

import msgspec
from starlette.requests import Request

from omnirelay.domain.errors import ValidationFailed
from omnirelay.http.errors import PayloadTooLarge, UnsupportedMediaType, from_msgspec

T = TypeVar("T")

_decoders: dict[type, msgspec.json.Decoder[object]] = {}


async def read_body(request: Request, limit: int) -> bytes:
    cached: bytes | None = getattr(request.state, "raw_body", None)
    if cached is not None:
        return cached
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge()
        chunks.append(chunk)
    raw = b"".join(chunks)
    request.state.raw_body = raw  # read once, also for Idempotency-Key digests
    return raw


def require_json(request: Request) -> None:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType()


async def decode(request: Request, type_: type[T], limit: int) -> T:
    require_json(request)
    raw = await read_body(request, limit)
    decoder = _decoders.get(type_)
    if decoder is None:
        decoder = _decoders[type_] = msgspec.json.Decoder(type_)
    try:
        return decoder.decode(raw)  # type: ignore[return-value]
    except msgspec.ValidationError as exc:
        raise from_msgspec(exc) from exc
    except msgspec.DecodeError as exc:
        raise ValidationFailed(field="body", problem=f"malformed JSON ({exc})") from exc
