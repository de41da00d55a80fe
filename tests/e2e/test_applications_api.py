"""The Messenger management API: applications and users, scoped to the account
(docs/api.md#messenger-applications-and-users)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
from typing import Any

import httpx
import pytest

from omnirelay import sandbox_data as sb
from omnirelay.services.accounts import hash_password
from tests.e2e.conftest import BASIC, RunningServer, json_of

pytestmark = pytest.mark.timeout(60)

APPS = "/facebook/1/applications"
TOKEN = "EAAG-very-secret-page-token"
SECRET = "app-secret-3f9a1c"


def new_app(**overrides: Any) -> dict[str, Any]:
    body = {
        "name": "Shop",
        "pageId": "123456789012345",
        "pageAccessToken": TOKEN,
        "appSecret": SECRET,
        "webhookUrl": "https://bot.example.com/inbound",
    }
    body.update(overrides)
    return body


def problem(response: httpx.Response) -> dict[str, list[str]]:
    assert response.status_code == 400, response.text
    exc = json_of(response)["requestError"]["serviceException"]
    assert exc["messageId"] == "BAD_REQUEST"
    errors: dict[str, list[str]] = exc.get("validationErrors", {})
    return errors


def signed_message(page_id: str, secret: str, mid: str) -> tuple[bytes, dict[str, str]]:
    stamp = int(time.time() * 1000)
    raw = json.dumps(
        {
            "object": "page",
            "entry": [
                {
                    "id": page_id,
                    "time": stamp,
                    "messaging": [
                        {
                            "sender": {"id": "5550001"},
                            "recipient": {"id": page_id},
                            "timestamp": stamp,
                            "message": {"mid": mid, "text": "hi"},
                        }
                    ],
                }
            ],
        }
    ).encode()
    signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"X-Hub-Signature-256": signature, "Content-Type": "application/json"}


async def second_account(server: RunningServer) -> dict[str, str]:
    accounts = server.gateway.accounts
    assert accounts is not None
    await accounts.create_account("bob", hash_password("bob's password"), server.gateway.clock.now())
    return {"Authorization": "Basic " + base64.b64encode(b"bob:bob's password").decode()}


async def test_application_lifecycle_never_returns_or_logs_secrets(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    created = await server.client.post(APPS, headers=BASIC, json=new_app(verifyToken="my-verify-token"))
    assert created.status_code == 200, created.text
    app = json_of(created)
    key = app["key"]
    assert re.fullmatch(r"[0-9A-F]{32}", key)
    assert app == {
        "key": key,
        "name": "Shop",
        "pageId": "123456789012345",
        "verifyToken": "my-verify-token",
        "webhookUrl": "https://bot.example.com/inbound",
        "callbackUrl": f"/webhooks/facebook/{key}",
    }
    got = await server.client.get(f"{APPS}/{key}", headers=BASIC)
    assert json_of(got) == app
    listed = await server.client.get(APPS, headers=BASIC)
    keys = [a["key"] for a in json_of(listed)["applications"]]
    assert key in keys and sb.APP_KEY in keys

    # a partial update keeps what it does not name, the write-only secrets included
    renamed = await server.client.put(
        f"{APPS}/{key}", headers=BASIC, json={"name": "Shop 2", "webhookUrl": None}
    )
    assert json_of(renamed) == {**app, "name": "Shop 2", "webhookUrl": None}
    raw, headers = signed_message("123456789012345", SECRET, "m_lifecycle_1")
    assert (
        await server.client.post(f"/webhooks/facebook/{key}", content=raw, headers=headers)
    ).status_code == 200
    challenge = {"hub.mode": "subscribe", "hub.verify_token": "my-verify-token", "hub.challenge": "42"}
    assert (await server.client.get(f"/webhooks/facebook/{key}", params=challenge)).text == "42"

    # a new app secret: old signatures are refused, new ones accepted
    rotated = await server.client.put(f"{APPS}/{key}", headers=BASIC, json={"appSecret": "rotated-secret"})
    assert rotated.status_code == 200
    raw, headers = signed_message("123456789012345", SECRET, "m_lifecycle_2")
    assert (
        await server.client.post(f"/webhooks/facebook/{key}", content=raw, headers=headers)
    ).status_code == 403
    raw, headers = signed_message("123456789012345", "rotated-secret", "m_lifecycle_2")
    assert (
        await server.client.post(f"/webhooks/facebook/{key}", content=raw, headers=headers)
    ).status_code == 200

    # omnirelay's own log lines (third-party DEBUG loggers such as aiosqlite's echo SQL parameters)
    ours = "\n".join(
        r.getMessage() + repr(r.__dict__) for r in caplog.records if r.name.startswith("omnirelay")
    )
    assert "Messenger application" in ours
    for response in (created, got, listed, renamed, rotated):
        for secret in (TOKEN, SECRET, "rotated-secret"):
            assert secret not in response.text
            assert secret not in ours
        assert "pageAccessToken" not in response.text and "appSecret" not in response.text

    assert (await server.client.delete(f"{APPS}/{key}", headers=BASIC)).status_code == 204
    assert (await server.client.get(f"{APPS}/{key}", headers=BASIC)).status_code == 404
    assert (await server.client.delete(f"{APPS}/{key}", headers=BASIC)).status_code == 404
    assert (await server.client.get(f"/webhooks/facebook/{key}", params=challenge)).status_code == 404


async def test_a_verify_token_is_generated_when_absent(server: RunningServer) -> None:
    one = json_of(await server.client.post(APPS, headers=BASIC, json=new_app()))
    two = json_of(await server.client.post(APPS, headers=BASIC, json=new_app(verifyToken=None)))
    assert len(one["verifyToken"]) >= 20 and len(two["verifyToken"]) >= 20
    assert one["verifyToken"] != two["verifyToken"]
    assert one["key"] != two["key"]


async def test_validation_errors(server: RunningServer) -> None:
    body = new_app()
    del body["name"]
    assert "name" in problem(await server.client.post(APPS, headers=BASIC, json=body))
    assert "name" in problem(await server.client.post(APPS, headers=BASIC, json=new_app(name="  ")))
    assert "pageId" in problem(await server.client.post(APPS, headers=BASIC, json=new_app(pageId="my-page")))
    assert "pageId" in problem(await server.client.post(APPS, headers=BASIC, json=new_app(pageId=12345)))
    assert "appSecret" in problem(await server.client.post(APPS, headers=BASIC, json=new_app(appSecret="")))
    assert "pageAccessToken" in problem(
        await server.client.post(APPS, headers=BASIC, json=new_app(pageAccessToken=None))
    )
    assert "webhookUrl" in problem(
        await server.client.post(APPS, headers=BASIC, json=new_app(webhookUrl="ftp://files.example.com"))
    )
    assert "webhookUrl" in problem(
        await server.client.put(f"{APPS}/{sb.APP_KEY}", headers=BASIC, json={"webhookUrl": "x"})
    )
    malformed = await server.client.post(
        APPS, headers={**BASIC, "Content-Type": "application/json"}, content=b'{"name": '
    )
    assert "body" in problem(malformed)
    assert (await server.client.post(APPS, json=new_app())).status_code == 401
    assert (await server.client.get(APPS)).status_code == 401
    # nothing was created by the refused requests
    names = [a["name"] for a in json_of(await server.client.get(APPS, headers=BASIC))["applications"]]
    assert "Shop" not in names


async def test_another_accounts_keys_behave_as_unknown(server: RunningServer) -> None:
    bob = await second_account(server)
    bobs = json_of(await server.client.post(APPS, headers=bob, json=new_app(name="Bob's")))
    assert [a["key"] for a in json_of(await server.client.get(APPS, headers=bob))["applications"]] == [
        bobs["key"]
    ]
    assert bobs["key"] not in [
        a["key"] for a in json_of(await server.client.get(APPS, headers=BASIC))["applications"]
    ]
    for headers, key in ((bob, sb.APP_KEY), (BASIC, bobs["key"])):
        assert (await server.client.get(f"{APPS}/{key}", headers=headers)).status_code == 404
        assert (
            await server.client.put(f"{APPS}/{key}", headers=headers, json={"name": "x"})
        ).status_code == 404
        assert (await server.client.get(f"{APPS}/{key}/users", headers=headers)).status_code == 404
        user = f"{APPS}/{key}/users/{sb.USER_KEY}"
        assert (await server.client.get(user, headers=headers)).status_code == 404
        assert (
            await server.client.put(user, headers=headers, json={"phoneNumber": "41793026727"})
        ).status_code == 404
        assert (await server.client.delete(user, headers=headers)).status_code == 404
        assert (await server.client.delete(f"{APPS}/{key}", headers=headers)).status_code == 404
    # untouched
    assert (
        json_of(await server.client.get(f"{APPS}/{sb.APP_KEY}", headers=BASIC))["name"]
        == "Sandbox application"
    )
    users = json_of(await server.client.get(f"{APPS}/{sb.APP_KEY}/users", headers=BASIC))
    assert users == [
        {"key": sb.USER_KEY, "integrationType": "FACEBOOK"},
        {"key": sb.USER_KEY_UNREAD, "integrationType": "FACEBOOK"},  # the sandbox's user who never reads
    ]


async def test_users_list_phone_numbers_and_delete(server: RunningServer) -> None:
    simulator = server.gateway.graph_simulator
    assert simulator is not None
    for _ in range(3):
        await simulator.user_sends(sb.PAGE_ID, text="hi")
    users_url = f"{APPS}/{sb.APP_KEY}/users"
    everyone = json_of(await server.client.get(users_url, headers=BASIC))
    assert len(everyone) == 5 and [u["key"] for u in everyone[:2]] == [sb.USER_KEY, sb.USER_KEY_UNREAD]
    assert all(u["integrationType"] == "FACEBOOK" for u in everyone)
    page = json_of(await server.client.get(f"{users_url}?limit=2&offset=1", headers=BASIC))
    assert page == everyone[1:3]
    assert "limit" in problem(await server.client.get(f"{users_url}?limit=0", headers=BASIC))
    assert "offset" in problem(await server.client.get(f"{users_url}?offset=-1", headers=BASIC))

    user_url = f"{users_url}/{sb.USER_KEY}"
    updated = await server.client.put(user_url, headers=BASIC, json={"phoneNumber": "+41 79 302 67 27"})
    assert json_of(updated) == {
        "key": sb.USER_KEY,
        "integrationType": "FACEBOOK",
        "phoneNumber": "41793026727",
    }
    assert json_of(await server.client.get(user_url, headers=BASIC))["phoneNumber"] == "41793026727"
    assert "phoneNumber" in problem(
        await server.client.put(user_url, headers=BASIC, json={"phoneNumber": "12"})
    )
    assert "phoneNumber" in problem(
        await server.client.put(user_url, headers=BASIC, json={"phoneNumber": "+41 abc"})
    )
    assert "phoneNumber" in problem(await server.client.put(user_url, headers=BASIC, json={}))

    # the registered number now reaches that Messenger user (docs/api.md#facebook-single-send)
    sent = await server.client.post(
        "/facebook/1/single",
        headers=BASIC,
        json={"from": sb.APP_KEY, "to": "+41793026727", "message": {"type": "TEXT", "text": "by phone"}},
    )
    message_id = json_of(sent)["messageId"]
    deadline = time.monotonic() + 10
    rows: list[dict[str, Any]] = []
    while not rows and time.monotonic() < deadline:
        rows = json_of(await server.client.get(f"/facebook/1/reports?messageId={message_id}", headers=BASIC))[
            "results"
        ]
    assert rows and rows[0]["status"]["name"] == "DELIVERED_TO_HANDSET"
    assert [r.recipient for r in simulator.requests][-1] == {"id": sb.PSID}

    cleared = await server.client.put(user_url, headers=BASIC, json={"phoneNumber": None})
    assert json_of(cleared) == {"key": sb.USER_KEY, "integrationType": "FACEBOOK"}

    victim = everyone[3]["key"]
    assert (await server.client.delete(f"{users_url}/{victim}", headers=BASIC)).status_code == 204
    assert (await server.client.get(f"{users_url}/{victim}", headers=BASIC)).status_code == 404
    assert (await server.client.delete(f"{users_url}/{victim}", headers=BASIC)).status_code == 404
    assert len(json_of(await server.client.get(users_url, headers=BASIC))) == 4
