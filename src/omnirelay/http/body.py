"""Reading and decoding request bodies: size limit, media type, msgspec validation."""

from __future__ import annotations

from typing import TypeVar

import msgspec
from starlette.requests import Request

from omnirelay.domain.errors import ValidationFailed
from omnirelay.http.errors import PayloadTooLarge, UnsupportedMediaType, from_msgspec

T = TypeVar("T")

_decoders: dict[type, msgspec.json.Decoder[object]] = {}


def declared_too_large(content_length: str | None, limit: int) -> bool:
    return content_length is not None and content_length.isdigit() and int(content_length) > limit


async def read_body(request: Request, limit: int) -> bytes:
    cached: bytes | None = getattr(request.state, "raw_body", None)
    if cached is not None:
        return cached
    if declared_too_large(request.headers.get("content-length"), limit):
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


def check_json(content_type: str | None) -> None:
    if content_type == "application/json":
        return
    media = (content_type or "").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType()


def require_json(request: Request) -> None:
    check_json(request.headers.get("content-type"))


async def decode(request: Request, type_: type[T], limit: int) -> T:
    require_json(request)
    return decode_raw(await read_body(request, limit), type_)


def decode_raw(raw: bytes, type_: type[T]) -> T:
    decoder = _decoders.get(type_)
    if decoder is None:
        decoder = _decoders[type_] = msgspec.json.Decoder(type_)
    try:
        return decoder.decode(raw)  # type: ignore[return-value]
    except msgspec.ValidationError as exc:
        raise from_msgspec(exc) from exc
    except msgspec.DecodeError as exc:
        raise ValidationFailed(field="body", problem=f"malformed JSON ({exc})") from exc
