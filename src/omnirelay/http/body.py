"""Reading and decoding request bodies: size limit, media type, msgspec validation.

Every JSON body is refused (400) when it is not UTF-8, nests deeper than the decoder can follow, or
holds U+0000 in any string: PostgreSQL's text cannot store it, and no channel can send it
(docs/decisions/0008-input-limits.md)."""

from __future__ import annotations

import re
from typing import TypeVar

import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive

from omnirelay.domain.errors import ValidationFailed
from omnirelay.http.errors import PayloadTooLarge, UnsupportedMediaType, from_msgspec

T = TypeVar("T")

_decoders: dict[type, msgspec.json.Decoder[object]] = {}


def declared_too_large(content_length: str | None, limit: int) -> bool:
    return content_length is not None and content_length.isdigit() and int(content_length) > limit


async def read_body(request: Request, limit: int) -> bytes:
    return await read_limited(request.receive, request.headers.get("content-length"), limit)


async def read_limited(receive: Receive, content_length: str | None, limit: int) -> bytes:
    """The whole body from ASGI `receive`, or `PayloadTooLarge` once it passes `limit` (or declares
    more); `ClientDisconnect` if the client goes away first."""
    if declared_too_large(content_length, limit):
        raise PayloadTooLarge()
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


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
        try:
            value = decoder.decode(raw)
        except msgspec.ValidationError as exc:
            if not _WHOLE_FLOAT.search(str(exc)):
                raise
            value = _with_whole_numbers(raw, type_)
        if _NUL in raw:  # rare: only then is the body walked to name the field
            where = nul_at(msgspec.json.decode(raw))
            if where is not None:
                raise ValidationFailed(field=where or "body", problem="must not contain U+0000 (NUL)")
    except msgspec.ValidationError as exc:
        raise from_msgspec(exc) from exc
    except msgspec.DecodeError as exc:
        raise ValidationFailed(field="body", problem=f"malformed JSON ({exc})") from exc
    except UnicodeDecodeError:
        raise ValidationFailed(field="body", problem="malformed JSON (not UTF-8)") from None
    except RecursionError:
        raise ValidationFailed(field="body", problem="JSON nested too deeply") from None
    return value  # type: ignore[return-value]


# JSON has one kind of number: 45.0 is the integer 45 to JSON Schema (and so to the document), where
# msgspec's integer fields take only 45. Read that way on this (rare) path only.
_WHOLE_FLOAT = re.compile(r"Expected `int( \| null)?`, got `float`")


def _with_whole_numbers(raw: bytes, type_: type[T]) -> T:
    return msgspec.convert(_whole(msgspec.json.decode(raw)), type_)


def _whole(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _whole(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole(item) for item in value]
    return value


_NUL = b"\\u0000"  # the only way JSON can carry U+0000 (a raw control character is malformed)


def nul_at(value: object, path: str = "") -> str | None:
    """The path of the first string (value or key) holding U+0000, or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}".lstrip(".")
            if "\x00" in key:
                return where
            found = nul_at(item, where)
            if found is not None:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = nul_at(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None
