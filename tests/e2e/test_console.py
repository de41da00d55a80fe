"""The web console (docs/console.md) in a real headless Chromium against a sandbox server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from selenium.webdriver.common.by import By

from omnirelay.config import DEFAULT_OPERATOR_TOKEN
from omnirelay.services.accounts import hash_password
from tests.e2e.browser import Browser
from tests.e2e.conftest import BASIC, RunningServer, json_of

XSS_TEXT = "<script>alert('text')</script>"
XSS_CALLBACK = "<img src=x onerror=alert('callback')>"
XSS_SCENARIO = "<img src=x onerror=alert('scenario')>"


@pytest.fixture
async def browser(server: RunningServer) -> AsyncIterator[Browser]:
    b = await Browser(server.base_url).start()
    try:
        yield b
    finally:
        await b.close()


async def send_failover(server: RunningServer, bulk_id: str = "") -> str:
    """A message by phone number only: the sandbox's Messenger refuses it, SMS delivers it."""
    body = {
        "destinations": [{"to": {"phoneNumber": "41793026727"}}],
        "facebook": {"text": "over Messenger"},
        "sms": {"text": XSS_TEXT},
        "callbackData": XSS_CALLBACK,
        **({"bulkId": bulk_id} if bulk_id else {}),
    }
    r = await server.client.post("/omni/1/advanced", headers=BASIC, json=body)
    assert r.status_code == 200, r.text
    (message,) = json_of(r)["messages"]
    await server.until_idle()
    return str(message["messageId"])


async def test_find_a_message_and_follow_its_journey(server: RunningServer, browser: Browser):
    await browser.get("/console/messages")
    assert await browser.path() == "/console/login"  # not signed in: sent to sign in
    await browser.screenshot("login")
    await browser.sign_in("Aladdin", "open sesame")
    message_id = await send_failover(server)
    await send_failover(server)  # another, which the search must leave out

    await browser.get("/console/messages")
    assert len(await browser.all("#messages tbody tr")) == 2
    await browser.fill("#f-messageId", message_id)
    await browser.click("#search button[type=submit]")
    await browser.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#messages tbody tr")) == 1)
    row = f'#messages tr[data-message-id="{message_id}"]'
    assert "DELIVERED_TO_HANDSET" in await browser.text(row)
    # message text is shown as text, never as markup
    assert await browser.text(f"{row} td.text") == XSS_TEXT
    await browser.screenshot("messages")

    await browser.click(f"{row} a")
    await browser.find("#timeline")
    messenger = await browser.find('#timeline .step[data-step="0"]')
    assert await browser.run(messenger.get_attribute, "data-channel") == "FACEBOOK"
    assert await browser.run(messenger.get_attribute, "data-group") == "REJECTED"
    failover = await browser.text('#timeline .failover[data-from="0"]')
    assert "refused" in failover and "REJECTED_DESTINATION_NOT_REGISTERED" in failover
    sms = await browser.find('#timeline .step[data-step="1"]')
    assert await browser.run(sms.get_attribute, "data-channel") == "SMS"
    assert await browser.run(sms.get_attribute, "data-status") == "DELIVERED_TO_HANDSET"
    final = await browser.find("#timeline .final")
    assert await browser.run(final.get_attribute, "data-status") == "DELIVERED_TO_HANDSET"
    report = await browser.find("#timeline .report")
    assert await browser.run(report.get_attribute, "data-kind") == "FINAL"
    # the XSS attempts stay text: no element was made of them, no script ran
    assert await browser.text("#callback-data") == XSS_CALLBACK
    assert await browser.all("#callback-data img, main script") == []
    assert await browser.no_alert()
    await browser.screenshot("journey")


async def test_a_second_account_sees_only_its_own_messages(server: RunningServer, browser: Browser):
    gw = server.gateway
    assert gw.accounts is not None
    await gw.accounts.create_account("Jasmine", hash_password("the palace garden"), gw.clock.now())
    message_id = await send_failover(server)
    await browser.sign_in("Jasmine", "the palace garden")
    await browser.get("/console/messages")
    await browser.find("#no-messages")
    await browser.get(f"/console/messages?messageId={message_id}")
    await browser.find("#no-messages")
    # Aladdin's message by its page address: not found for Jasmine
    await browser.get("/console/messages/1")
    assert "Not found" in await browser.text("h1")
    assert message_id not in await browser.run(lambda: browser.d.page_source)

    # the operator sees every account's messages, the content withheld
    await browser.click("nav form.logout button")
    await browser.find("#account-login")
    await browser.sign_in_operator(DEFAULT_OPERATOR_TOKEN)
    await browser.get("/console/messages")
    row = f'#messages tr[data-message-id="{message_id}"]'
    assert "Aladdin" in await browser.text(row)
    assert await browser.text(f"{row} td.text") == "withheld"
    await browser.click(f"{row} a")
    await browser.find('#timeline .step[data-step="1"]')
    assert XSS_CALLBACK not in await browser.text("main")


async def test_a_form_without_its_csrf_token_is_refused(server: RunningServer, browser: Browser):
    await browser.sign_in("Aladdin", "open sesame")
    await browser.get("/console/messages")
    # the sign-out form, its token taken out: refused, and the session goes on
    await browser.script("document.querySelector('nav form.logout input[name=csrf]').remove()")
    await browser.click("nav form.logout button")
    assert "Forbidden" in await browser.text("h1")
    await browser.get("/console/messages")
    assert await browser.text("nav .who") == "Aladdin"
    # with its token, it signs out
    await browser.click("nav form.logout button")
    await browser.find("#account-login")
    await browser.get("/console/messages")
    assert await browser.path() == "/console/login"


async def test_the_overview_draws_its_charts_and_refreshes_without_a_reload(
    server: RunningServer, browser: Browser
):
    from omnirelay import sandbox_data as sb

    # the scenario's name is the account's to choose: shown as text, never as markup
    renamed = await server.client.put(
        f"/omni/1/scenarios/{sb.SCENARIO_KEY}", headers=BASIC, json={"name": XSS_SCENARIO}
    )
    assert renamed.status_code == 200, renamed.text
    await send_failover(server)
    await browser.sign_in("Aladdin", "open sesame")
    assert await browser.path() == "/console/overview"
    await browser.until(lambda d: d.find_element(By.ID, "total-accepted").text == "1")
    assert await browser.text("#total-finished") == "1"
    # the charts are SVG drawn from the numbers: a bar per series with messages, the funnel's
    # failover on step 1 and delivery on step 2, and SMS's delivery rate
    assert await browser.all("#chart-minutes svg rect.accepted") and await browser.all(
        "#chart-minutes svg rect.finished"
    )
    assert await browser.all('#chart-funnel svg rect.failedover[data-step="1"]')
    assert await browser.all('#chart-funnel svg rect.delivered[data-step="2"]')
    assert await browser.all('#chart-delivery svg rect.delivered[data-channel="SMS"]')
    funnel = [
        [td.text for td in row.find_elements(By.TAG_NAME, "td")]
        for row in await browser.all("#funnel tbody tr")
    ]
    assert funnel == [["1", "FACEBOOK", "1", "0", "1", "0", "0"], ["2", "SMS", "1", "1", "0", "0", "0"]]
    # per scenario and step (docs/console.md#overview): Messenger refused it, SMS met its criterion
    by_scenario = [
        [td.text for td in row.find_elements(By.TAG_NAME, "td")]
        for row in await browser.all(f'#scenario-funnel tbody tr[data-scenario="{sb.SCENARIO_KEY}"]')
    ]
    assert by_scenario == [
        [XSS_SCENARIO, "1", "FACEBOOK", "DELIVERED", "0", "0", "1", "0", "0", "0"],
        [XSS_SCENARIO, "2", "SMS", "DELIVERED", "1", "1", "0", "0", "0", "0"],
    ]
    assert await browser.all("#scenario-funnel img") == [] and await browser.no_alert()
    assert await browser.text("#latency-p50") != "—"
    await browser.screenshot("overview")
    # a message sent now shows up on the open page: the numbers were polled, the page not reloaded
    await browser.script("window.stillThisPage = true")
    await send_failover(server)
    await browser.until(lambda d: d.find_element(By.ID, "total-accepted").text == "2", timeout_s=20)
    assert await browser.script("return window.stillThisPage === true")


async def test_the_overview_numbers_are_the_accounts_own(server: RunningServer):
    # the JSON the page polls, read as the page does (its session cookie): another account's
    # message counts for the operator only
    gw = server.gateway
    assert gw.accounts is not None
    await gw.accounts.create_account("Jasmine", hash_password("the palace garden"), gw.clock.now())
    await send_failover(server)

    async def overview(kind: str, **fields: str) -> dict[str, object]:
        client = server.client
        client.cookies.clear()
        login = await client.get("/console/login")
        token = login.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        signed = await client.post("/console/login", data={"csrf": token, "kind": kind, **fields})
        assert signed.status_code == 303, signed.text
        data: dict[str, object] = json_of(await client.get("/console/overview.json"))
        return data

    assert (await overview("account", username="Jasmine", password="the palace garden"))["totals"] == {
        "accepted": 0,
        "finished": 0,
    }
    mine = await overview("account", username="Aladdin", password="open sesame")
    assert mine["totals"] == {"accepted": 1, "finished": 1}
    assert mine["delivery"] == [
        {"channel": "FACEBOOK", "final": 1, "delivered": 0, "rate": 0.0},
        {"channel": "SMS", "final": 1, "delivered": 1, "rate": 1.0},
    ]
    operator = await overview("operator", token=DEFAULT_OPERATOR_TOKEN)
    assert operator["totals"] == {"accepted": 1, "finished": 1}


async def test_channels_and_configuration_pages(server: RunningServer, browser: Browser):
    from omnirelay import sandbox_data as sb

    await send_failover(server)  # the sandbox's first Page has sent (and been refused)
    await browser.sign_in("Aladdin", "open sesame")
    await browser.get("/console/channels")
    connector = await browser.text('#smpp tr[data-connector="sandbox"]')
    assert "bound" in connector and "not bound" not in connector and "0 / 50" in connector
    assert "127.0.0.1" not in connector  # the SMSC's address is the operator's to see
    page = await browser.text(f'#pages tr[data-page="{sb.PAGE_ID}"]')
    assert sb.APP_KEY in page
    await browser.screenshot("channels")
    await browser.get("/console/config")
    scenario = await browser.text(f'#scenarios tr[data-scenario="{sb.SCENARIO_KEY}"]')
    assert f"FACEBOOK from {sb.APP_KEY} → SMS from {sb.SMS_SENDER}" in scenario and "default" in scenario
    assert await browser.all(f'#applications tr[data-application="{sb.APP_KEY}"]')
    source = await browser.run(lambda: browser.d.page_source)
    assert sb.PAGE_TOKEN not in source and sb.APP_SECRET not in source and sb.VERIFY_TOKEN not in source
    assert await browser.all("#connectors") == []  # SMPP connectors and routes are the operator's
    await browser.get("/console/channels")
    assert await browser.all("#nodes") == []  # so are the cluster's hosts and processes

    # the SMPP session's problems show on the page: the SMSC goes away, the connector is not bound
    smsc = server.gateway.smsc_simulator
    assert smsc is not None
    await smsc.stop()
    await browser.get("/console/channels")
    await browser.until(
        lambda d: (
            "not bound" in d.find_element(By.CSS_SELECTOR, '#smpp tr[data-connector="sandbox"]').text
            or d.refresh()
        ),
        timeout_s=15,
    )
    problem = await browser.text('#smpp tr[data-connector="sandbox"]')
    assert "connection ended" in problem or "cannot bind" in problem, problem  # whichever came last

    await browser.click("nav form.logout button")
    await browser.sign_in_operator(DEFAULT_OPERATOR_TOKEN)
    await browser.get("/console/config")
    assert "Aladdin" in await browser.text(f'#scenarios tr[data-scenario="{sb.SCENARIO_KEY}"]')
    await browser.find("#connectors")
    await browser.find("#routes")
    # the cluster's nodes (docs/console.md#channels-and-configuration): this one, live
    membership = server.gateway.membership
    assert membership is not None
    await browser.get("/console/channels")
    node = await browser.find(f'#nodes tr[data-node="{membership.node_id}"]')
    assert await browser.run(node.get_attribute, "data-state") == "LIVE"
    assert "LIVE" in await browser.text(f'#nodes tr[data-node="{membership.node_id}"] td.state')
