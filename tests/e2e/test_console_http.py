"""The console over plain HTTP (docs/console.md): cookies, CSRF, bad input, pages, the document."""

from __future__ import annotations

import httpx

from omnirelay import sandbox_data as sb
from omnirelay.config import DEFAULT_OPERATOR_TOKEN
from omnirelay.services.accounts import hash_password
from tests.e2e.conftest import BASIC, RunningServer, json_of


def csrf_of(html: str) -> str:
    return html.split('name="csrf" value="', 1)[1].split('"', 1)[0]


async def sign_in(client: httpx.AsyncClient, username: str = "Aladdin", password: str = "open sesame") -> str:
    login = await client.get("/console/login")
    signed = await client.post(
        "/console/login",
        data={"csrf": csrf_of(login.text), "kind": "account", "username": username, "password": password},
    )
    assert signed.status_code == 303 and signed.headers["location"] == "/console/overview", signed.text
    return signed.headers["set-cookie"]


async def test_cookies_are_httponly_strict_and_secure_off_loopback(server: RunningServer):
    cookie = await sign_in(server.client)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain HTTP on 127.0.0.1: a Secure cookie would never come back
    async with httpx.AsyncClient(base_url=server.base_url, headers={"Host": "gateway.example"}) as other:
        login = await other.get("/console/login")
        assert "Secure" in login.headers["set-cookie"] and "HttpOnly" in login.headers["set-cookie"]
    page = await server.client.get("/console/messages")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"


async def test_sign_in_needs_its_csrf_token_and_right_credentials(server: RunningServer):
    client = server.client
    login = await client.get("/console/login")
    fields = {"kind": "account", "username": "Aladdin", "password": "open sesame"}
    refused = await client.post("/console/login", data=fields)
    assert refused.status_code == 403 and "omnirelay_console=" not in refused.headers.get("set-cookie", "")
    wrong = await client.post("/console/login", data={**fields, "csrf": "0" * 64})
    assert wrong.status_code == 403
    bad = await client.post(
        "/console/login", data={**fields, "password": "nope", "csrf": csrf_of(login.text)}
    )
    assert bad.status_code == 401 and "Invalid login details" in bad.text
    operator = await client.post(
        "/console/login", data={"kind": "operator", "token": "not the token", "csrf": csrf_of(bad.text)}
    )
    assert operator.status_code == 401
    huge = await client.post("/console/login", content=b"a=" + b"x" * 20_000)
    assert huge.status_code == 413


async def test_bad_input_is_a_400_page_never_a_500(server: RunningServer):
    await sign_in(server.client)
    for query in (
        "since=yesterday",
        "until=2026-13-01",
        "before=abc",
        "before=1-",
        "status=NOPE",
        "channel=FAX",
        "messageId=" + "x" * 201,
        "to=%00",
    ):
        r = await server.client.get(f"/console/messages?{query}")
        assert r.status_code == 400, (query, r.status_code, r.text[:200])
    assert (await server.client.get("/console/messages/999999")).status_code == 404
    assert (await server.client.get("/console/messages/abc")).status_code == 404
    assert (await server.client.get("/console/static/../../config.py")).status_code == 404
    assert (await server.client.get("/console/overview.json?minutes=0")).status_code == 400


async def test_older_pages_follow_the_newest(server: RunningServer):
    body = {
        "destinations": [{"to": {"phoneNumber": f"4179302{i:04d}"}} for i in range(51)],
        "sms": {"text": "x"},
    }
    r = await server.client.post("/omni/1/advanced", headers=BASIC, json=body)
    assert r.status_code == 200, r.text
    await sign_in(server.client)
    first = await server.client.get("/console/messages")
    assert first.text.count("<tr data-message-id=") == 50
    older = first.text.split('id="older" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    second = await server.client.get(older)
    assert second.text.count("<tr data-message-id=") == 1 and 'id="older"' not in second.text
    shown = {
        part.split('"', 1)[0] for page in (first, second) for part in page.text.split('data-message-id="')[1:]
    }
    assert shown == {m["messageId"] for m in json_of(r)["messages"]}


async def test_the_console_is_not_in_the_api_document(server: RunningServer):
    doc = json_of(await server.client.get("/openapi.json"))
    assert not [path for path in doc["paths"] if path.startswith("/console")]
    # unauthenticated, pages send the browser to sign in
    r = await server.client.get("/console/overview.json")
    assert r.status_code == 303 and r.headers["location"] == "/console/login"


async def test_the_overview_funnel_is_per_scenario_and_step_with_its_criterion(server: RunningServer):
    """docs/console.md#overview: `/omni/1/analytics`'s funnel, named, with each step's criterion."""
    gw = server.gateway
    assert gw.accounts is not None
    await gw.accounts.create_account("Jasmine", hash_password("the palace garden"), gw.clock.now())
    flow = [
        {"from": sb.APP_KEY, "channel": "FACEBOOK", "successCriterion": "SEEN"},
        {"from": sb.SMS_SENDER, "channel": "SMS", "successCriterion": "ACCEPTED"},
    ]
    changed = await server.client.put(
        f"/omni/1/scenarios/{sb.SCENARIO_KEY}",
        headers=BASIC,
        json={"name": "Messenger <b>first</b>", "flow": flow},
    )
    assert changed.status_code == 200, changed.text
    body = {
        "destinations": [{"to": {"phoneNumber": "41793026727"}}],  # no Messenger user: fails over
        "facebook": {"text": "over Messenger"},
        "sms": {"text": "by SMS"},
    }
    sent = await server.client.post("/omni/1/advanced", headers=BASIC, json=body)
    assert sent.status_code == 200, sent.text
    await server.until_idle()

    expected = [
        {
            "key": sb.SCENARIO_KEY,
            "name": "Messenger <b>first</b>",
            "steps": [
                {
                    "step": 1,
                    "channel": "FACEBOOK",
                    "criterion": "SEEN",
                    "sent": 0,
                    "met": 0,
                    "failed": {"rejected": 1, "failureReceipt": 0, "expired": 0},
                    "lateSuccess": 0,
                },
                {
                    "step": 2,
                    "channel": "SMS",
                    "criterion": "ACCEPTED",
                    "sent": 1,
                    "met": 1,
                    "failed": {"rejected": 0, "failureReceipt": 0, "expired": 0},
                    "lateSuccess": 0,
                },
            ],
        }
    ]
    await sign_in(server.client)
    assert json_of(await server.client.get("/console/overview.json"))["scenarios"] == expected
    server.client.cookies.clear()
    await sign_in(server.client, "Jasmine", "the palace garden")
    assert json_of(await server.client.get("/console/overview.json"))["scenarios"] == []
    # the operator: every account's
    server.client.cookies.clear()
    login = await server.client.get("/console/login")
    signed = await server.client.post(
        "/console/login",
        data={"csrf": csrf_of(login.text), "kind": "operator", "token": DEFAULT_OPERATOR_TOKEN},
    )
    assert signed.status_code == 303, signed.text
    assert json_of(await server.client.get("/console/overview.json"))["scenarios"] == expected
