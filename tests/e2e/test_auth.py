"""Basic, App and IBSSO authentication (docs/api.md#authentication), and tenant isolation."""

from __future__ import annotations

import base64

from omnirelay.ports import MessengerApplication
from omnirelay.services.accounts import digest, hash_password, new_api_key
from tests.e2e.conftest import BASIC, RunningServer, json_of


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_app_key_authenticates(server: RunningServer):
    gw = server.gateway
    assert gw.accounts is not None
    account_id, _ = await gw.accounts.account_by_username("Aladdin") or (0, "")
    key = new_api_key()
    await gw.accounts.add_api_key(account_id, "ci", digest(key), gw.clock.now())
    r = await server.client.get("/facebook/1/reports", headers={"Authorization": f"App {key}"})
    assert r.status_code == 200 and json_of(r) == {"results": []}
    r = await server.client.get("/facebook/1/reports", headers={"Authorization": f"App {key}x"})
    assert r.status_code == 401


async def test_ibsso_session_lifecycle(server: RunningServer):
    r = await server.client.post("/auth/1/session", json={"username": "Aladdin", "password": "open sesame"})
    assert r.status_code == 200
    token = json_of(r)["token"]
    headers = {"Authorization": f"IBSSO {token}"}
    assert (await server.client.get("/facebook/1/reports", headers=headers)).status_code == 200
    assert (await server.client.delete("/auth/1/session", headers=headers)).status_code == 204
    assert (await server.client.get("/facebook/1/reports", headers=headers)).status_code == 401
    bad = await server.client.post("/auth/1/session", json={"username": "Aladdin", "password": "nope"})
    assert bad.status_code == 401


async def test_passwords_and_keys_are_not_stored_in_clear(server: RunningServer):
    gw = server.gateway
    assert gw.accounts is not None
    found = await gw.accounts.account_by_username("Aladdin")
    assert found is not None and "open sesame" not in found[1] and found[1].startswith("scrypt$")


async def test_tenants_are_isolated(server: RunningServer):
    gw = server.gateway
    assert gw.accounts is not None and gw.applications is not None
    aladdin, _ = await gw.accounts.account_by_username("Aladdin") or (0, "")
    await gw.accounts.create_account("Jasmine", hash_password("palace"), gw.clock.now())
    await gw.applications.create_application(
        MessengerApplication("A" * 32, aladdin, "shop", "page-1", "token", "secret", "verify"), gw.clock.now()
    )
    jasmine = basic("Jasmine", "palace")
    # Jasmine cannot send from Aladdin's application: it does not exist for her
    r = await server.client.post(
        "/facebook/1/single",
        headers=jasmine,
        json={"from": "A" * 32, "to": "+41793026727", "message": {"type": "TEXT", "text": "x"}},
    )
    assert r.status_code == 200 and json_of(r)["status"]["name"] == "REJECTED_SOURCE"
    # and her report is hers alone
    assert json_of(await server.client.get("/facebook/1/reports", headers=BASIC)) == {"results": []}
    (mine,) = json_of(await server.client.get("/facebook/1/reports", headers=jasmine))["results"]
    assert mine["messageId"] == json_of(r)["messageId"]
