"""Hostile input gets a 400 in the error format on both backends, and nothing reaches the database
that it would refuse (docs/decisions/0008-input-limits.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from omnirelay import sandbox_data as sb
from omnirelay.config import Settings
from tests.e2e.conftest import BASIC, RunningServer, free_port, json_of, start_server

ADVANCED = "/omni/1/advanced"
SINGLE = "/facebook/1/single"
PHONE = [{"to": {"phoneNumber": "41793026727"}}]
NESTED = b'{"a":' * 50_000 + b"1" + b"}" * 50_000


@pytest.fixture
async def any_server(database_url: str, tmp_path: Path) -> AsyncIterator[RunningServer]:
    """The whole server on SQLite and on PostgreSQL."""
    settings = Settings(
        host="127.0.0.1",
        port=free_port(),
        data_dir=tmp_path / "data",
        database_url=SecretStr(database_url),
        idle_poll_s=0.05,
    )
    srv, task, app = await start_server(settings)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.port}", timeout=30) as client:
        yield RunningServer(f"http://127.0.0.1:{settings.port}", app, settings, client)
    srv.should_exit = True
    await task


def advanced(**extra: Any) -> dict[str, Any]:
    return {"destinations": PHONE, "sms": {"text": "hi"}, **extra}


def raw_advanced(extra: bytes) -> bytes:
    return b'{"destinations":[{"to":{"phoneNumber":"41793026727"}}],"sms":{"text":"hi"},' + extra + b"}"


# (name, method, path, JSON body or raw bytes, field named in validationErrors)
CASES: list[tuple[str, str, str, Any, str]] = [
    ("invalid UTF-8 in a string", "POST", ADVANCED, raw_advanced(b'"bulkId":"\xff\xfe"'), "body"),
    (
        "validityPeriod NaN",
        "POST",
        ADVANCED,
        advanced(sms={"text": "x", "validityPeriod": "NaN"}),
        "sms.validityPeriod",
    ),
    (
        "validityPeriod Infinity",
        "POST",
        ADVANCED,
        advanced(sms={"text": "x", "validityPeriod": "Infinity"}),
        "sms.validityPeriod",
    ),
    ("sendAt before year 1 in UTC", "POST", ADVANCED, advanced(sendAt="0001-01-01T00:00:00+14:00"), "sendAt"),
    (
        "sendAt after year 9999 in UTC",
        "POST",
        ADVANCED,
        advanced(sendAt="9999-12-31T23:59:59-14:00"),
        "sendAt",
    ),
    ("50,000 nested objects, unknown field", "POST", ADVANCED, raw_advanced(b'"zz":' + NESTED), "body"),
    ("50,000 nested objects, ignored channel", "POST", ADVANCED, raw_advanced(b'"voice":' + NESTED), "body"),
    ("NUL in sms.text", "POST", ADVANCED, advanced(sms={"text": "a\x00b"}), "sms.text"),
    ("NUL in callbackData", "POST", ADVANCED, advanced(callbackData="\x00"), "callbackData"),
    ("NUL in a key", "POST", ADVANCED, advanced(voice={"\x00": 1}), "voice.\x00"),
    (
        "phoneNumber over 200",
        "POST",
        ADVANCED,
        advanced(destinations=[{"to": {"phoneNumber": "4" * 201}}]),
        "destinations[0].to.phoneNumber",
    ),
    (
        "facebookUserKey over 200",
        "POST",
        ADVANCED,
        advanced(destinations=[{"to": {"facebookUserKey": "k" * 201}}]),
        "destinations[0].to.facebookUserKey",
    ),
    ("bad notifyUrl", "POST", ADVANCED, advanced(notifyUrl="http://[::1/"), "notifyUrl"),
    ("notifyUrl port", "POST", ADVANCED, advanced(notifyUrl="http://127.0.0.1:99999/hook"), "notifyUrl"),
    (
        "Facebook to over 200",
        "POST",
        SINGLE,
        {"from": sb.APP_KEY, "to": "x" * 201, "message": {"type": "TEXT", "text": "x"}},
        "to",
    ),
    (
        "NUL in Facebook to",
        "POST",
        SINGLE,
        {"from": sb.APP_KEY, "to": "x\x00", "message": {"type": "TEXT", "text": "x"}},
        "to",
    ),
    (
        "scenario name over 500",
        "POST",
        "/omni/1/scenarios",
        {"name": "n" * 501, "flow": [{"from": "InfoSMS", "channel": "SMS"}]},
        "name",
    ),
    (
        "NUL in scenario name",
        "POST",
        "/omni/1/scenarios",
        {"name": "n\x00", "flow": [{"from": "InfoSMS", "channel": "SMS"}]},
        "name",
    ),
    (
        "step sender over 200",
        "POST",
        "/omni/1/scenarios",
        {"name": "n", "flow": [{"from": "4" * 201, "channel": "SMS"}]},
        "flow[0].from",
    ),
    (
        "sentSince before year 1, OMNI logs",
        "GET",
        "/omni/1/logs?sentSince=0001-01-01T00:00:00%2B14:00",
        None,
        "sentSince",
    ),
    (
        "sentUntil after 9999, OMNI logs",
        "GET",
        "/omni/1/logs?sentUntil=9999-12-31T23:59:59-14:00",
        None,
        "sentUntil",
    ),
    (
        "sentSince before year 1, Facebook logs",
        "GET",
        "/facebook/1/logs?sentSince=0001-01-01T00:00:00%2B14:00",
        None,
        "sentSince",
    ),
    (
        "sentUntil after 9999, Facebook logs",
        "GET",
        "/facebook/1/logs?sentUntil=9999-12-31T23:59:59-14:00",
        None,
        "sentUntil",
    ),
    ("NUL in a query parameter", "GET", "/omni/1/logs?to=%00", None, "query"),
    ("channel outside the enum, reports", "GET", "/omni/1/reports?channel=VIBER", None, "channel"),
    ("channel outside the enum, logs", "GET", "/facebook/1/logs?channel=sms", None, "channel"),
    ("isDefault not a boolean", "GET", "/omni/1/scenarios?default=true&isDefault=1", None, "isDefault"),
    ("empty integer", "GET", "/omni/1/logs?limit=", None, "limit"),
    ("NUL in a path parameter", "GET", "/omni/1/scenarios/%00", None, "path"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_hostile_input_is_a_400_on_both_backends(
    any_server: RunningServer, method: str, path: str, body: Any, field: str
) -> None:
    c = any_server.client
    before = (await c.get("/omni/1/logs?limit=1000", headers=BASIC)).json()["results"]
    if isinstance(body, bytes):
        r = await c.request(method, path, content=body, headers={**BASIC, "content-type": "application/json"})
    else:
        r = await c.request(method, path, json=body, headers=BASIC)
    assert r.status_code == 400, r.text
    error = json_of(r)["requestError"]["serviceException"]
    assert error["messageId"] == "BAD_REQUEST"
    assert field in error["validationErrors"], error
    # nothing was half-accepted: the server still serves, and nothing was kept
    logs = await c.get("/omni/1/logs?limit=1000", headers=BASIC)
    assert logs.status_code == 200 and logs.json()["results"] == before


async def test_an_idempotency_key_over_200_characters_is_a_400(any_server: RunningServer) -> None:
    r = await any_server.client.post(
        ADVANCED, json=advanced(), headers={**BASIC, "Idempotency-Key": "k" * 201}
    )
    assert r.status_code == 400, r.text
    assert "Idempotency-Key" in json_of(r)["requestError"]["serviceException"]["validationErrors"]
    ok = await any_server.client.post(
        ADVANCED, json=advanced(), headers={**BASIC, "Idempotency-Key": "k" * 200}
    )
    assert ok.status_code == 200, ok.text


async def test_values_at_the_limits_are_accepted_on_both_backends(any_server: RunningServer) -> None:
    c = any_server.client
    scenario = await c.post(
        "/omni/1/scenarios",
        json={"name": "n" * 500, "flow": [{"from": "4" * 200, "channel": "SMS"}]},
        headers=BASIC,
    )
    assert scenario.status_code == 200, scenario.text
    body = {
        "scenarioKey": scenario.json()["key"],
        "destinations": [{"to": {"phoneNumber": "4" * 200, "facebookUserKey": "k" * 200}}],
        "sms": {"text": "x"},
        "sendAt": "9999-12-31T23:59:59Z",
    }
    far = await c.post(ADVANCED, json=body, headers=BASIC)
    assert far.status_code == 400 and "180 days" in far.text  # a real date, refused by the rule
    del body["sendAt"]
    r = await c.post(ADVANCED, json=body, headers=BASIC)
    assert r.status_code == 200, r.text
    assert r.json()["messages"][0]["status"]["groupName"] == "REJECTED"  # not a phone number
    single = await c.post(
        SINGLE,
        json={"from": sb.APP_KEY, "to": "x" * 200, "message": {"type": "TEXT", "text": "x"}},
        headers=BASIC,
    )
    assert single.status_code == 200, single.text
    logs = await c.get(
        "/omni/1/logs?sentSince=0001-01-01T00:00:00Z&sentUntil=9999-12-31T23:59:59Z", headers=BASIC
    )
    assert logs.status_code == 200
    assert [row["to"] for row in logs.json()["results"]].count("4" * 200) == 1
