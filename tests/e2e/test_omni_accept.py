"""What `POST /omni/1/advanced` and `/omni/1/text` answer (docs/api.md#omni-sends), before any channel
acts."""

from __future__ import annotations

import time
import uuid

from tests.e2e.conftest import BASIC, RunningServer, json_of

ACCEPTED = {
    "groupId": 0,
    "groupName": "ACCEPTED",
    "id": 0,
    "name": "MESSAGE_ACCEPTED",
    "description": "Message accepted",
}


async def test_seed_shapes(server: RunningServer):
    body = {
        "scenarioKey": "CC9F01A5DC7BEE2C2B829D203482A654",
        "destinations": [
            {"to": {"phoneNumber": "41793026727", "facebookUserKey": "9c29bd43-054b-4cfe-a1d4-0b37812b4ed3"}}
        ],
        "facebook": {"text": "hi"},
        "sms": {"text": "This is the SMS failover message"},
    }
    out = json_of(await server.client.post("/omni/1/advanced", json=body, headers=BASIC))
    assert list(out) == ["messages"]
    (m,) = out["messages"]
    assert m["to"] == body["destinations"][0]["to"] and m["status"] == ACCEPTED
    uuid.UUID(m["messageId"])


async def test_per_destination_rejections_and_bulk(server: RunningServer):
    body = {
        "bulkId": "BULK-1",
        "destinations": [
            {"messageId": "M-1", "to": {"phoneNumber": "41793026727"}},
            {"to": {"phoneNumber": "12"}},
            {"to": {"emailAddress": "a@example.com"}},
            {"messageId": "M-1", "to": {"phoneNumber": "41793026731"}},
        ],
        "sms": {"text": "x"},
        "viber": {"text": "ignored"},
    }
    out = json_of(await server.client.post("/omni/1/advanced", json=body, headers=BASIC))
    assert out["bulkId"] == "BULK-1"
    names = [m["status"]["name"] for m in out["messages"]]
    assert names == [
        "MESSAGE_ACCEPTED",
        "REJECTED_DESTINATION",
        "MISSING_TO",
        "REJECTED_DUPLICATE_MESSAGE_ID",
    ]
    assert out["messages"][0]["messageId"] == "M-1"
    # two destinations without bulkId: one is generated
    two = {"destinations": [{"to": {"phoneNumber": "41793026727"}}] * 2, "sms": {"text": "x"}}
    assert json_of(await server.client.post("/omni/1/advanced", json=two, headers=BASIC))["bulkId"]
    # rejected destinations end in a final report
    for m in out["messages"][1:3]:
        url = f"/omni/1/reports?bulkId=BULK-1&messageId={m['messageId']}"
        (report,) = json_of(await server.client.get(url, headers=BASIC))["results"]
        assert report["status"] == m["status"] and report["bulkId"] == "BULK-1"


async def test_request_errors(server: RunningServer):
    c = server.client
    base = {"destinations": [{"to": {"phoneNumber": "41793026727"}}], "sms": {"text": "x"}}
    cases = [
        ({**base, "scenarioKey": "0" * 32}, f"scenarioKey: scenario {'0' * 32} not found"),
        ({**base, "destinations": []}, "destinations: must not be empty"),
        ({**base, "sendAt": "tomorrow"}, "sendAt: must be a date-time like 2016-12-24T09:00:00.000+0100"),
        ({**base, "sendAt": "2099-01-01T00:00:00.000+0000"}, "sendAt: must be less than 180 days ahead"),
        ({**base, "notifyUrl": "ftp://x"}, "notifyUrl: must be an absolute http(s) URL"),
        ({**base, "sms": {"text": "x", "validityPeriod": "soon"}}, "sms.validityPeriod: must be a number"),
        ({**base, "facebook": {"type": "IMAGE"}}, "facebook.url: must be an absolute http(s) URL for media"),
        ({**base, "callbackData": "x" * 4001}, "callbackData: must be at most 4000 characters"),
    ]
    for body, text in cases:
        r = await c.post("/omni/1/advanced", json=body, headers=BASIC)
        assert r.status_code == 400, (body, r.text)
        assert json_of(r)["requestError"]["serviceException"]["text"] == text


async def test_no_default_scenario(server: RunningServer):
    from omnirelay.services.accounts import hash_password

    gw = server.gateway
    assert gw.accounts is not None
    await gw.accounts.create_account("Abu", hash_password("monkey"), gw.clock.now())
    r = await server.client.post(
        "/omni/1/text",
        json={"destinations": [{"to": {"phoneNumber": "41793026727"}}], "text": "x"},
        auth=("Abu", "monkey"),
    )
    assert r.status_code == 400
    assert json_of(r)["requestError"]["serviceException"]["text"] == "scenarioKey: Default scenario not found"


async def test_ten_thousand_destinations_in_one_request(server: RunningServer):
    body = {
        "destinations": [{"to": {"phoneNumber": f"4179{i:07d}"}} for i in range(10_000)],
        "sms": {"text": "x"},
    }
    started = time.perf_counter()
    r = await server.client.post("/omni/1/advanced", json=body, headers=BASIC, timeout=60)
    elapsed = time.perf_counter() - started
    assert r.status_code == 200
    out = json_of(r)
    assert len(out["messages"]) == 10_000 and len({m["messageId"] for m in out["messages"]}) == 10_000
    print(f"10,000 destinations accepted in {elapsed:.2f} s")  # measured in bench/, never asserted
