"""Scenario management through the API (docs/api.md#scenarios)."""

from __future__ import annotations

from tests.e2e.conftest import BASIC, RunningServer, json_of

SEED = {
    "name": "My first Facebook-SMS scenario",
    "flow": [
        {"from": "FacebookApplicationKey", "channel": "FACEBOOK"},
        {"from": "InfoSMS", "channel": "SMS"},
    ],
    "default": True,
}


async def test_create_get_list_update_delete(server: RunningServer):
    c = server.client
    r = await c.post("/omni/1/scenarios", json=SEED, headers=BASIC)
    assert r.status_code == 200
    created = json_of(r)
    key = created["key"]
    assert len(key) == 32 and key == key.upper()
    assert created == {**SEED, "key": key}  # the default criterion is not shown: Infobip's answer
    # the new default demoted the sandbox's
    defaults = json_of(await c.get("/omni/1/scenarios?default=true", headers=BASIC))["scenarios"]
    assert [s["key"] for s in defaults] == [key]
    others = json_of(await c.get("/omni/1/scenarios?isDefault=false", headers=BASIC))["scenarios"]
    assert "CC9F01A5DC7BEE2C2B829D203482A654" in [s["key"] for s in others]
    assert json_of(await c.get(f"/omni/1/scenarios/{key}", headers=BASIC)) == created
    # partial update: only the name changes
    r = await c.put(f"/omni/1/scenarios/{key}", json={"name": "renamed"}, headers=BASIC)
    assert json_of(r) == {**created, "name": "renamed"}
    # clients that say defaultScenario are understood
    r = await c.put(
        "/omni/1/scenarios/CC9F01A5DC7BEE2C2B829D203482A654", json={"defaultScenario": True}, headers=BASIC
    )
    assert json_of(r)["default"] is True
    assert json_of(await c.get(f"/omni/1/scenarios/{key}", headers=BASIC))["default"] is False
    page = json_of(await c.get("/omni/1/scenarios?limit=1&page=1", headers=BASIC))["scenarios"]
    assert [s["key"] for s in page] == [key]
    assert (await c.delete(f"/omni/1/scenarios/{key}", headers=BASIC)).status_code == 204
    r = await c.get(f"/omni/1/scenarios/{key}", headers=BASIC)
    assert r.status_code == 404 and json_of(r)["requestError"]["serviceException"]["messageId"] == "NOT_FOUND"


async def test_validation(server: RunningServer):
    cases = [
        ({**SEED, "name": ""}, "name: must not be empty"),
        ({**SEED, "flow": []}, "flow: must not be empty"),
        ({**SEED, "flow": [{"from": "x", "channel": "PIGEON"}]}, "flow[0].channel: unknown channel PIGEON"),
        (
            {**SEED, "flow": [{"from": "x", "channel": "VIBER"}]},
            "flow[0].channel: channel VIBER is not supported",
        ),
        (
            {**SEED, "flow": [{"from": "NOPE", "channel": "FACEBOOK"}]},
            "flow[0].from: NOPE is not a Facebook application key of this account",
        ),
        ({**SEED, "flow": [{"channel": "SMS"}]}, "flow[0].from: is required"),
        ({**SEED, "default": "yes"}, "default: Expected `bool | null`, got `str`"),
        (
            {**SEED, "flow": [{"from": "InfoSMS", "channel": "SMS", "successCriterion": "SEEN"}]},
            "flow[0].successCriterion: SEEN is not possible on SMS: it reports no reads",
        ),
        (
            {**SEED, "flow": [{"from": "InfoSMS", "channel": "SMS", "successCriterion": "READ"}]},
            "flow[0].successCriterion: Invalid enum value 'READ'",
        ),
        (
            {
                **SEED,
                "flow": [
                    {"from": "InfoSMS", "channel": "SMS"},
                    {"from": "InfoSMS", "channel": "SMS", "successCriterion": "ACCEPTED"},
                ],
            },
            "flow[1]: repeats flow[0] (same channel and from)",
        ),
    ]
    for body, text in cases:
        r = await server.client.post("/omni/1/scenarios", json=body, headers=BASIC)
        assert r.status_code == 400, body
        assert json_of(r)["requestError"]["serviceException"]["text"] == text


async def test_first_scenario_of_an_account_becomes_default(server: RunningServer):
    from omnirelay.services.accounts import hash_password

    gw = server.gateway
    assert gw.accounts is not None
    await gw.accounts.create_account("Jafar", hash_password("lamp"), gw.clock.now())
    auth = ("Jafar", "lamp")
    body = {"name": "sms only", "flow": [{"from": "InfoSMS", "channel": "SMS"}]}
    r = await server.client.post("/omni/1/scenarios", json=body, auth=auth)
    assert json_of(r)["default"] is True
    # Jafar sees only his own scenarios; Aladdin's key is unknown to him
    listed = json_of(await server.client.get("/omni/1/scenarios", auth=auth))["scenarios"]
    assert [s["name"] for s in listed] == ["sms only"]
    r = await server.client.get("/omni/1/scenarios/CC9F01A5DC7BEE2C2B829D203482A654", auth=auth)
    assert r.status_code == 404


async def test_success_criteria_are_kept_and_seen_on_sms_is_refused_on_update(server: RunningServer):
    """docs/api.md#success-criteria: one per step, DELIVERED when left out."""
    c = server.client
    flow = [
        {"from": "FacebookApplicationKey", "channel": "FACEBOOK", "successCriterion": "SEEN"},
        {"from": "InfoSMS", "channel": "SMS", "successCriterion": "ACCEPTED"},
    ]
    body = {
        "name": "seen",
        "flow": [*flow, {"from": "447700900123", "channel": "SMS", "successCriterion": "DELIVERED"}],
    }
    created = json_of(await c.post("/omni/1/scenarios", json=body, headers=BASIC))
    flow.append({"from": "447700900123", "channel": "SMS"})  # the default is not shown
    assert created["flow"] == flow
    key = created["key"]
    assert json_of(await c.get(f"/omni/1/scenarios/{key}", headers=BASIC))["flow"] == flow
    r = await c.put(
        f"/omni/1/scenarios/{key}",
        json={"flow": [{"from": "InfoSMS", "channel": "SMS", "successCriterion": "SEEN"}]},
        headers=BASIC,
    )
    assert r.status_code == 400
    error = json_of(r)["requestError"]["serviceException"]
    assert error["messageId"] == "BAD_REQUEST"
    assert error["text"] == "flow[0].successCriterion: SEEN is not possible on SMS: it reports no reads"
    assert json_of(await c.get(f"/omni/1/scenarios/{key}", headers=BASIC))["flow"] == flow  # unchanged
