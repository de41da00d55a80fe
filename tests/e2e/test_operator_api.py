"""The operator API `/admin/1/...` (docs/api.md#operator-api): token guard, validation, write-only passwords,
and production mode's refusal of the default operator token (docs/api.md#production-mode)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from omnirelay.bootstrap import Gateway, RefusedToStart
from omnirelay.config import Settings
from tests.e2e.conftest import BASIC, RunningServer, free_port, json_of

SANDBOX_TOKEN = {"Authorization": "Bearer sandbox-operator-token"}  # the sandbox's documented default
CONNECTOR = {
    "name": "smsc1",
    "host": "127.0.0.1",
    "port": 2775,
    "systemId": "gw",
    "password": "pw-S3cr",
}


def problem(response: Any) -> str:
    text: str = json_of(response)["requestError"]["serviceException"]["text"]
    return text


async def test_token_is_required(server: RunningServer):
    c = server.client
    unauthorized = {
        "requestError": {"serviceException": {"messageId": "UNAUTHORIZED", "text": "Invalid login details"}}
    }
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Bearer"},
        {"Authorization": "sandbox-operator-token"},
        {"Authorization": "Basic sandbox-operator-token"},
        BASIC,  # an account's credentials are not the operator's
    ):
        for method, path in (
            ("GET", "/admin/1/connectors"),
            ("POST", "/admin/1/connectors"),
            ("GET", "/admin/1/connectors/smsc1"),
            ("PUT", "/admin/1/connectors/smsc1"),
            ("DELETE", "/admin/1/connectors/smsc1"),
            ("GET", "/admin/1/routes"),
            ("POST", "/admin/1/routes"),
            ("DELETE", "/admin/1/routes/41"),
            ("GET", "/admin/1/prices"),
            ("POST", "/admin/1/prices"),
            ("DELETE", "/admin/1/prices/SMS/CH"),
        ):
            r = await c.request(method, path, headers=headers, json=CONNECTOR)
            assert r.status_code == 401, (method, path, headers)
            assert json_of(r) == unauthorized
    assert json_of(await c.get("/admin/1/connectors", headers=SANDBOX_TOKEN)) == {"connectors": []}


async def test_connectors_crud_and_password_is_write_only(
    server: RunningServer, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)  # the default log level
    c, h = server.client, SANDBOX_TOKEN
    r = await c.post("/admin/1/connectors", json={**CONNECTOR, "tls": True, "throughput": 50}, headers=h)
    assert r.status_code == 200, r.text
    created = json_of(r)
    assert created == {
        "name": "smsc1",
        "host": "127.0.0.1",
        "port": 2775,
        "systemId": "gw",
        "systemType": "",
        "tls": True,
        "throughput": 50.0,
        "window": 10,
        "enquireLinkS": 30.0,
        "responseTimeoutS": 10.0,
        "reconnectMinS": 1.0,
        "reconnectMaxS": 60.0,
        "destTon": 1,
        "destNpi": 1,
        "binds": 1,
    }
    assert json_of(await c.get("/admin/1/connectors/smsc1", headers=h)) == created
    assert json_of(await c.get("/admin/1/connectors", headers=h)) == {"connectors": [created]}
    r = await c.put("/admin/1/connectors/smsc1", json={"window": 20, "host": "smsc.example"}, headers=h)
    assert r.status_code == 200
    assert json_of(r) == {**created, "window": 20, "host": "smsc.example"}
    # the password survived the update without being sent again
    gw = server.gateway
    assert gw.connectors is not None
    stored = await gw.connectors.get("smsc1")
    assert stored.password == "pw-S3cr" and "pw-S3cr" not in repr(stored)
    r = await c.put("/admin/1/connectors/smsc1", json={"password": "n3w"}, headers=h)
    assert r.status_code == 200 and "password" not in r.text and "n3w" not in r.text
    assert (await gw.connectors.get("smsc1")).password == "n3w"
    assert (await c.post("/admin/1/connectors", json=CONNECTOR, headers=h)).status_code == 409
    assert (await c.delete("/admin/1/connectors/smsc1", headers=h)).status_code == 204
    assert (await c.get("/admin/1/connectors/smsc1", headers=h)).status_code == 404
    assert (await c.delete("/admin/1/connectors/smsc1", headers=h)).status_code == 404
    logged = [rec.getMessage() for rec in caplog.records]
    assert not [m for m in logged if "pw-S3cr" in m or "n3w" in m]


async def test_connector_validation(server: RunningServer):
    c, h = server.client, SANDBOX_TOKEN
    cases = [
        ({k: v for k, v in CONNECTOR.items() if k != "host"}, "host: is required"),
        ({**CONNECTOR, "port": 70000}, "port: must be between 1 and 65535"),
        ({**CONNECTOR, "systemId": "x" * 16}, "systemId: must be at most 15 printable ASCII characters"),
        ({**CONNECTOR, "systemId": ""}, "systemId: is required"),
        ({**CONNECTOR, "password": "123456789"}, "password: must be at most 8 printable ASCII characters"),
        (
            {**CONNECTOR, "name": "bad name"},
            "name: must be 1 to 64 letters, digits, '.', '_' or '-' (not first)",
        ),
        ({**CONNECTOR, "window": 0}, "window: must be between 1 and 1000"),
        ({**CONNECTOR, "reconnectMinS": 5, "reconnectMaxS": 1}, "reconnectMaxS: must be a number >= 5"),
        ({**CONNECTOR, "throughput": -1}, "throughput: Expected `float` >= 0.0"),
        ({**CONNECTOR, "destTon": 300}, "destTon: must be between 0 and 255"),
        ({**CONNECTOR, "colour": "red"}, "body: Object contains unknown field `colour`"),
    ]
    for body, text in cases:
        r = await c.post("/admin/1/connectors", json=body, headers=h)
        assert r.status_code == 400, (body, r.text)
        assert problem(r) == text, body
    assert (await c.post("/admin/1/connectors", json=CONNECTOR, headers=h)).status_code == 200
    r = await c.put("/admin/1/connectors/smsc1", json={"name": "other"}, headers=h)
    assert r.status_code == 400 and problem(r).startswith("name: cannot be changed")
    r = await c.put("/admin/1/connectors/smsc1", json={"port": 0}, headers=h)
    assert r.status_code == 400 and problem(r) == "port: must be between 1 and 65535"
    assert (await c.put("/admin/1/connectors/nope", json={"port": 1}, headers=h)).status_code == 404
    r = await c.post("/admin/1/connectors", content=b"{", headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 400


async def test_routes(server: RunningServer):
    c, h = server.client, SANDBOX_TOKEN
    assert (await c.post("/admin/1/connectors", json=CONNECTOR, headers=h)).status_code == 200
    r = await c.post("/admin/1/routes", json={"prefix": "+41", "connector": "smsc1"}, headers=h)
    assert json_of(r) == {"prefix": "41", "connector": "smsc1"}
    r = await c.post("/admin/1/routes", json={"connector": "smsc1"}, headers=h)
    assert json_of(r) == {"prefix": "", "connector": "smsc1"}
    r = await c.post("/admin/1/routes", json={"prefix": "4x", "connector": "smsc1"}, headers=h)
    assert r.status_code == 400 and problem(r) == "prefix: must be up to 20 digits, or empty (default)"
    r = await c.post("/admin/1/routes", json={"prefix": "49", "connector": "nope"}, headers=h)
    assert r.status_code == 400 and problem(r) == "connector: no connector named nope"
    routes = json_of(await c.get("/admin/1/routes", headers=h))["routes"]
    assert routes == [{"prefix": "", "connector": "smsc1"}, {"prefix": "41", "connector": "smsc1"}]
    r = await c.delete("/admin/1/connectors/smsc1", headers=h)
    assert r.status_code == 409 and "used by routes 41, default" in problem(r)
    assert (await c.delete("/admin/1/routes/41", headers=h)).status_code == 204
    assert (await c.delete("/admin/1/routes/default", headers=h)).status_code == 204
    assert (await c.delete("/admin/1/routes/default", headers=h)).status_code == 404
    assert (await c.delete("/admin/1/connectors/smsc1", headers=h)).status_code == 204


async def test_prices(server: RunningServer):
    c, h = server.client, SANDBOX_TOKEN
    ok = {"channel": "sms", "country": "ch", "pricePerMessage": 0.05, "currency": "chf"}
    r = await c.post("/admin/1/prices", json=ok, headers=h)
    assert json_of(r) == {"channel": "SMS", "country": "CH", "pricePerMessage": 0.05, "currency": "CHF"}
    r = await c.post("/admin/1/prices", json={"channel": "FACEBOOK", "pricePerMessage": 0}, headers=h)
    assert json_of(r) == {"channel": "FACEBOOK", "country": "", "pricePerMessage": 0.0, "currency": "EUR"}
    # setting again replaces
    await c.post("/admin/1/prices", json={**ok, "pricePerMessage": 0.06}, headers=h)
    listed = json_of(await c.get("/admin/1/prices", headers=h))["prices"]
    assert listed == [
        {"channel": "FACEBOOK", "country": "", "pricePerMessage": 0.0, "currency": "EUR"},
        {"channel": "SMS", "country": "CH", "pricePerMessage": 0.06, "currency": "CHF"},
    ]
    cases = [
        ({**ok, "channel": "FAX"}, "channel: must be one of FACEBOOK, SMS"),
        ({**ok, "country": "CHE"}, 'country: must be an ISO 3166 code such as CH, or "" (default)'),
        ({**ok, "currency": "EURO"}, "currency: must be a 3-letter ISO 4217 code such as EUR"),
        ({**ok, "pricePerMessage": -0.01}, "pricePerMessage: must be a number from 0 to 1e+06"),
        ({**ok, "pricePerMessage": "free"}, "pricePerMessage: Expected `float`, got `str`"),
    ]
    for body, text in cases:
        r = await c.post("/admin/1/prices", json=body, headers=h)
        assert r.status_code == 400 and problem(r) == text, r.text
    assert (await c.delete("/admin/1/prices/SMS/CH", headers=h)).status_code == 204
    assert (await c.delete("/admin/1/prices/SMS/CH", headers=h)).status_code == 404
    assert (await c.delete("/admin/1/prices/FACEBOOK/default", headers=h)).status_code == 204
    assert json_of(await c.get("/admin/1/prices", headers=h)) == {"prices": []}


@pytest.mark.parametrize("token", [None, "short-token"])
async def test_production_refuses_a_default_or_weak_operator_token(tmp_path: Path, token: str | None):
    values: dict[str, Any] = {"port": free_port(), "data_dir": tmp_path / "data", "sandbox": False}
    if token is not None:
        values["operator_token"] = token
    gateway = Gateway(Settings(**values))
    with pytest.raises(RefusedToStart, match="OMNIRELAY_OPERATOR_TOKEN"):
        await gateway.start()
    assert gateway.engine is None  # refused before touching storage
