"""Every failure path answers in Infobip's error format (docs/api.md#errors), never with a traceback."""

from __future__ import annotations

import logging

import pytest
from starlette.requests import Request
from starlette.routing import Route

from tests.e2e.conftest import BASIC, RunningServer, json_of

SEND = "/facebook/1/single"
GOOD = {
    "from": "8F0792F86035A9F4290821F1EE6BC06A",
    "to": "9c29bd43-054b-4cfe-a1d4-0b37812b4ed3",
    "message": {"type": "TEXT", "text": "hi"},
}


def exception_of(response) -> dict:  # type: ignore[no-untyped-def]
    return json_of(response)["requestError"]["serviceException"]


async def test_malformed_json(server: RunningServer):
    r = await server.client.post(
        SEND, content=b'{"from": ', headers={**BASIC, "content-type": "application/json"}
    )
    assert r.status_code == 400
    e = exception_of(r)
    assert e["messageId"] == "BAD_REQUEST" and "malformed JSON" in e["text"]


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        ({**GOOD, "from": 12}, "from", "Expected `str`, got `int`"),
        ({k: v for k, v in GOOD.items() if k != "message"}, "message", "is required"),
        ({**GOOD, "message": {"type": "SMOKE_SIGNAL"}}, "message.type", "Invalid enum value 'SMOKE_SIGNAL'"),
        ({**GOOD, "message": {"type": "TEXT"}}, "message.text", "must not be empty for type TEXT"),
        (
            {**GOOD, "message": {"type": "IMAGE", "url": "/relative.png"}},
            "message.url",
            "absolute http(s) URL",
        ),
        (
            {
                **GOOD,
                "message": {
                    "type": "TEMPLATE",
                    "payload": {
                        "type": "BUTTON",
                        "text": "t",
                        "buttons": [{"type": "URL", "title": "t", "url": "https://x.example"}] * 4,
                    },
                },
            },
            "message.payload.buttons",
            "must hold 1 to 3 buttons",
        ),
        (
            {
                **GOOD,
                "message": {
                    "type": "TEMPLATE",
                    "payload": {
                        "type": "BUTTON",
                        "text": "t",
                        "buttons": [{"type": "POSTBACK", "title": "x" * 21, "payload": "p"}],
                    },
                },
            },
            "message.payload.buttons[0].title",
            "1 to 20 characters",
        ),
        (
            {
                **GOOD,
                "message": {
                    "type": "TEMPLATE",
                    "payload": {
                        "type": "BUTTON",
                        "text": "t" * 321,
                        "buttons": [{"type": "POSTBACK", "title": "x", "payload": "p"}],
                    },
                },
            },
            "message.payload.text",
            "at most 320",
        ),
        ({**GOOD, "to": ""}, "to", "Expected `str` of length >= 1"),
    ],
)
async def test_validation_errors_name_the_field(server: RunningServer, body: dict, field: str, problem: str):
    r = await server.client.post(SEND, json=body, headers=BASIC)
    assert r.status_code == 400, r.text
    e = exception_of(r)
    assert e["messageId"] == "BAD_REQUEST"
    assert e["text"].startswith(f"{field}: ") and problem in e["text"], e
    assert list(e["validationErrors"]) == [field]


async def test_oversized_body(server: RunningServer):
    big = b'{"from":"' + b"x" * (server.settings.max_body_bytes + 10) + b'"}'
    r = await server.client.post(SEND, content=big, headers={**BASIC, "content-type": "application/json"})
    assert r.status_code == 413 and exception_of(r)["messageId"] == "PAYLOAD_TOO_LARGE"


async def test_unsupported_media_type(server: RunningServer):
    r = await server.client.post(SEND, content=b"from=x", headers={**BASIC, "content-type": "text/plain"})
    assert r.status_code == 415 and exception_of(r)["messageId"] == "UNSUPPORTED_MEDIA_TYPE"


async def test_unknown_path_and_method(server: RunningServer):
    r = await server.client.get("/nowhere", headers=BASIC)
    assert r.status_code == 404 and exception_of(r)["messageId"] == "NOT_FOUND"
    r = await server.client.get(SEND, headers=BASIC)
    assert r.status_code == 405 and exception_of(r)["messageId"] == "METHOD_NOT_ALLOWED"
    assert r.headers["allow"] == "POST"
    # a path served by several routes, one per method: Allow names them all
    r = await server.client.patch("/omni/1/scenarios/KEY", headers=BASIC)
    assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET, HEAD, PUT"


async def test_unauthorized(server: RunningServer):
    for headers in (
        {},
        {"Authorization": "Basic bm9ib2R5Om5vcGU="},
        {"Authorization": "Bearer x"},
        {"Authorization": "Basic !!!"},
        {"Authorization": "App nope"},
    ):
        r = await server.client.post(SEND, json=GOOD, headers=headers)
        assert r.status_code == 401
        assert exception_of(r) == {"messageId": "UNAUTHORIZED", "text": "Invalid login details"}


async def test_internal_error_hides_the_traceback(server: RunningServer, caplog: pytest.LogCaptureFixture):
    async def broken(_request: Request):  # type: ignore[no-untyped-def]
        raise RuntimeError("secret internals")

    server.app.router.routes.append(Route("/broken", broken))
    with caplog.at_level(logging.ERROR):
        r = await server.client.get("/broken")
    assert r.status_code == 500
    assert exception_of(r) == {"messageId": "GENERAL_ERROR", "text": "Something went wrong"}
    assert "secret internals" not in r.text and "Traceback" not in r.text
    assert any(rec.exc_info and "secret internals" in str(rec.exc_info[1]) for rec in caplog.records)


async def test_health_ready_docs_openapi(server: RunningServer):
    assert json_of(await server.client.get("/health")) == {"status": "ok"}
    ready = await server.client.get("/ready")
    assert ready.status_code == 200 and json_of(ready)["checks"]["storage"] is True
    doc = json_of(await server.client.get("/openapi.json"))
    assert doc["paths"]["/facebook/1/single"]["post"]["requestBody"]
    assert "FacebookSingleIn" in doc["components"]["schemas"]
    assert "swagger" in (await server.client.get("/docs")).text.lower()
    metrics = await server.client.get("/metrics")
    assert metrics.status_code == 200 and "process_" in metrics.text


async def test_send_routes_hide_the_traceback_too(
    server: RunningServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    # the send routes are served before Starlette's stack (http/sends.py): same table, same logging
    async def broken(*_args: object) -> None:
        raise RuntimeError("secret internals")

    assert server.app.state.services is not None
    monkeypatch.setattr(server.app.state.services.facebook, "send", broken)
    with caplog.at_level(logging.ERROR):
        r = await server.client.post(SEND, json=GOOD, headers=BASIC)
    assert r.status_code == 500
    assert exception_of(r) == {"messageId": "GENERAL_ERROR", "text": "Something went wrong"}
    assert "secret internals" not in r.text
    assert any(rec.exc_info and "secret internals" in str(rec.exc_info[1]) for rec in caplog.records)


async def test_oversized_chunked_body(server: RunningServer):
    # no Content-Length: the limit is enforced while the chunks arrive
    async def chunks():  # type: ignore[no-untyped-def]
        yield b'{"from":"'
        for _ in range(server.settings.max_body_bytes // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    r = await server.client.post(
        SEND, content=chunks(), headers={**BASIC, "content-type": "application/json"}
    )
    assert r.status_code == 413 and exception_of(r)["messageId"] == "PAYLOAD_TOO_LARGE"


async def test_chunked_body_is_accepted(server: RunningServer):
    import asyncio
    import json

    raw = json.dumps(GOOD).encode()

    async def chunks():  # type: ignore[no-untyped-def]
        for i in range(0, len(raw), 40):
            yield raw[i : i + 40]
            await asyncio.sleep(0.05)  # each chunk reaches the app as its own ASGI message

    r = await server.client.post(
        SEND, content=chunks(), headers={**BASIC, "content-type": "application/json"}
    )
    assert r.status_code == 200 and json_of(r)["status"]["name"] == "PENDING_ACCEPTED"
