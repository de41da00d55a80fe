"""The one table from errors to HTTP answers, in Infobip's error body (docs/api.md#errors)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from omnirelay.domain.errors import (
    Conflict,
    Forbidden,
    NotFound,
    OmnirelayError,
    RateLimited,
    RequestError,
    StorageBusy,
    StorageUnavailable,
    Unauthorized,
    ValidationFailed,
)

log = logging.getLogger(__name__)


class PayloadTooLarge(RequestError):
    """Request body too large"""


class UnsupportedMediaType(RequestError):
    """Unsupported media type: send application/json"""


class MethodNotAllowed(RequestError):
    """Method not allowed"""


# error class -> (HTTP status, messageId); the first matching row wins
TABLE: tuple[tuple[type[OmnirelayError], int, str], ...] = (
    (ValidationFailed, 400, "BAD_REQUEST"),
    (Unauthorized, 401, "UNAUTHORIZED"),
    (Forbidden, 403, "FORBIDDEN"),
    (NotFound, 404, "NOT_FOUND"),
    (MethodNotAllowed, 405, "METHOD_NOT_ALLOWED"),
    (Conflict, 409, "CONFLICT"),
    (PayloadTooLarge, 413, "PAYLOAD_TOO_LARGE"),
    (UnsupportedMediaType, 415, "UNSUPPORTED_MEDIA_TYPE"),
    (RateLimited, 429, "TOO_MANY_REQUESTS"),
    (RequestError, 400, "BAD_REQUEST"),
    (StorageUnavailable, 503, "SERVICE_UNAVAILABLE"),
)

_encoder = msgspec.json.Encoder()


def error_body(message_id: str, text: str, validation: dict[str, list[str]] | None = None) -> bytes:
    exc: dict[str, object] = {"messageId": message_id, "text": text}
    if validation:
        exc["validationErrors"] = validation
    return _encoder.encode({"requestError": {"serviceException": exc}})


@dataclass(frozen=True, slots=True)
class Answer:
    """A JSON answer before it is a Starlette `Response` or plain ASGI messages."""

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()

    def response(self) -> Response:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in self.headers}
        return Response(self.body, self.status, headers, media_type="application/json")


INTERNAL = Answer(500, error_body("GENERAL_ERROR", "Something went wrong"))


def answer(exc: OmnirelayError) -> Answer:
    for cls, status, message_id in TABLE:
        if isinstance(exc, cls):
            validation = (
                {exc.field: [exc.problem]} if isinstance(exc, ValidationFailed) and exc.field else None
            )
            headers = (
                ((b"retry-after", str(max(1, round(exc.retry_after_s))).encode()),)
                if isinstance(exc, RateLimited | StorageBusy)
                else ()
            )
            return Answer(status, error_body(message_id, exc.message, validation), headers)
    return INTERNAL


def error_response(exc: OmnirelayError) -> Response:
    return answer(exc).response()


def status_of(exc: Exception) -> int:
    """The HTTP status the handlers answer `exc` with (for counting, without building the answer)."""
    if isinstance(exc, HTTPException):
        return exc.status_code
    if isinstance(exc, OmnirelayError):
        for cls, status, _ in TABLE:
            if isinstance(exc, cls):
                return status
    return 500


def internal_error() -> Response:
    return INTERNAL.response()


_AT = re.compile(r"^(?P<problem>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_MISSING = re.compile(r"Object missing required field `(?P<field>[^`]+)`")
# msgspec's length bounds, in the words the routes use for the same rules
_LENGTH = (
    (re.compile(r"Expected `(array|object)` of length >= 1$"), "must not be empty"),
    (re.compile(r"Expected `(array|object)` of length <= (?P<n>\d+)$"), "must hold at most {n} items"),
    (re.compile(r"Expected `str` of length <= (?P<n>\d+)$"), "must be at most {n} characters"),
)


def from_msgspec(exc: msgspec.ValidationError) -> ValidationFailed:
    """Turn msgspec's "Expected `str`, got `int` - at `$.message.type`" into field and problem."""
    match = _AT.match(str(exc))
    problem = match.group("problem") if match else str(exc)
    path = (match.group("path") or "") if match else ""
    path = path.lstrip(".")
    missing = _MISSING.match(problem)
    if missing:
        path = f"{path}.{missing.group('field')}".lstrip(".")
        problem = "is required"
    for pattern, words in _LENGTH:
        bound = pattern.match(problem)
        if bound:
            problem = words.format(**bound.groupdict())
            break
    return ValidationFailed(field=path or "body", problem=problem)


async def handle_omnirelay_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OmnirelayError)
    return error_response(exc)


def allowed_methods(request: Request) -> list[str]:
    """Every method the request's path is served with. Starlette's own Allow names those of the
    first route of the path only, and a path here is a route per method."""
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match is not Match.NONE and isinstance(route, Route):
            methods |= set(route.methods or ())
    return sorted(methods)


async def handle_http_exception(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(NotFound("Not found"))
    if exc.status_code == 405:
        response = error_response(MethodNotAllowed())
        response.headers["Allow"] = ", ".join(allowed_methods(_request))
        return response
    return Response(
        error_body("BAD_REQUEST", str(exc.detail)), exc.status_code, media_type="application/json"
    )


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return internal_error()
