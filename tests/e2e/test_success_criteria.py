"""Success criteria, late outcomes and the funnel end to end: the HTTP API, the real Graph client
and the sandbox's simulators over local sockets (docs/api.md#success-criteria,
docs/api.md#late-outcomes, docs/api.md#analytics)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from omnirelay import sandbox_data as sb
from omnirelay.services.accounts import hash_password
from tests.e2e.conftest import BASIC, RunningServer, json_of
from tests.e2e.receiver import Receiver
from tests.e2e.test_omni_flows import final_reports


async def test_analytics_counts_the_funnel_per_account(server: RunningServer):
    c = server.client
    body = {
        "destinations": [{"to": {"phoneNumber": "41793026727"}}],
        "facebook": {"text": "Messenger knows nobody with this number"},
        "sms": {"text": "so this goes by SMS"},
    }
    (m,) = json_of(await c.post("/omni/1/advanced", json=body, headers=BASIC))["messages"]
    await final_reports(server, {m["messageId"]})
    out = json_of(await c.get("/omni/1/analytics", headers=BASIC))
    assert out["since"] < out["until"]
    (scenario,) = out["scenarios"]
    assert scenario["scenarioKey"] == sb.SCENARIO_KEY
    assert scenario["steps"] == [
        {
            "step": 0,
            "channel": "FACEBOOK",
            "sent": 0,
            "met": 0,
            "failed": {"rejected": 1, "failureReceipt": 0, "expired": 0},
            "lateSuccess": 0,
        },
        {
            "step": 1,
            "channel": "SMS",
            "sent": 1,
            "met": 1,
            "failed": {"rejected": 0, "failureReceipt": 0, "expired": 0},
            "lateSuccess": 0,
        },
    ]
    # the Prometheus counters agree
    metrics = (await c.get("/metrics")).text
    labels = f'channel="SMS",outcome="met",scenario="{sb.SCENARIO_KEY}",step="1"'
    assert f"omnirelay_funnel_steps_total{{{labels}}} 1.0" in metrics
    # a period that ended before the message, an inverted one: nothing
    early = "2020-01-01T00:00:00.000+0000"
    assert json_of(await c.get(f"/omni/1/analytics?until={early}", headers=BASIC))["scenarios"] == []
    assert (
        json_of(await c.get(f"/omni/1/analytics?since={out['until']}&until={early}", headers=BASIC))[
            "scenarios"
        ]
        == []
    )
    # another account sees none of it; no credentials, a time that cannot be read: the API's errors
    gw = server.gateway
    assert gw.accounts is not None
    await gw.accounts.create_account("Jafar", hash_password("lamp"), gw.clock.now())
    assert json_of(await c.get("/omni/1/analytics", auth=("Jafar", "lamp")))["scenarios"] == []
    assert (await c.get("/omni/1/analytics")).status_code == 401
    r = await c.get("/omni/1/analytics?since=yesterday", headers=BASIC)
    assert r.status_code == 400
    assert json_of(r)["requestError"]["serviceException"]["text"].startswith("since: must be a date-time")


SMS_STEP = {"from": sb.SMS_SENDER, "channel": "SMS"}


async def scenario(server: RunningServer, criterion: str) -> str:
    flow = [{"from": sb.APP_KEY, "channel": "FACEBOOK", "successCriterion": criterion}, SMS_STEP]
    r = await server.client.post("/omni/1/scenarios", json={"name": criterion, "flow": flow}, headers=BASIC)
    return str(json_of(r)["key"])


async def send(server: RunningServer, body: dict[str, Any]) -> str:
    (m,) = json_of(await server.client.post("/omni/1/advanced", json=body, headers=BASIC))["messages"]
    return str(m["messageId"])


async def attempts(server: RunningServer, message_id: str) -> list[dict[str, Any]]:
    (row,) = json_of(await server.client.get(f"/omni/1/logs?messageId={message_id}", headers=BASIC))[
        "results"
    ]
    return list(row["attempts"])


def sms_sent(server: RunningServer, text: str) -> bool:
    smsc = server.gateway.smsc_simulator
    assert smsc is not None
    return any(s.short_message == text.encode() for s in smsc.submits)


async def test_seen_met_by_the_sandbox_user_who_reads_and_accepted_at_acceptance(server: RunningServer):
    seen = await scenario(server, "SEEN")
    message_id = await send(
        server,
        {
            "scenarioKey": seen,
            "destinations": [{"to": {"phoneNumber": "41793026727", "facebookUserKey": sb.USER_KEY}}],
            "facebook": {"text": "read me"},
            "sms": {"text": "SMS after a read: must not go"},
        },
    )
    report = (await final_reports(server, {message_id}))[message_id]
    assert report["channel"] == "FACEBOOK" and report["status"]["name"] == "DELIVERED_TO_HANDSET"
    (fb,) = await attempts(server, message_id)
    # the delivery came first and was progress; the read met the criterion
    assert fb["successCriterion"] == "SEEN" and fb["deliveredAt"] <= fb["seenAt"] <= fb["doneAt"]

    accepted = await scenario(server, "ACCEPTED")
    message_id = await send(
        server,
        {
            "scenarioKey": accepted,
            "destinations": [{"to": {"phoneNumber": "41793026727", "facebookUserKey": sb.USER_KEY}}],
            "facebook": {"text": "taken is enough"},
            "sms": {"text": "SMS after an acceptance: must not go"},
        },
    )
    report = (await final_reports(server, {message_id}))[message_id]
    assert report["channel"] == "FACEBOOK" and report["status"]["name"] == "DELIVERED_TO_OPERATOR"
    await server.until_idle()  # Meta's delivery webhook comes after the report
    (fb,) = await attempts(server, message_id)
    assert fb["status"]["name"] == "DELIVERED_TO_OPERATOR" and fb["successCriterion"] == "ACCEPTED"
    assert fb["lateDelivery"]["status"]["name"] == "DELIVERED_TO_HANDSET"
    assert not sms_sent(server, "SMS after a read: must not go")
    assert not sms_sent(server, "SMS after an acceptance: must not go")


@pytest.mark.slow
async def test_seen_missed_fails_over_and_a_late_delivery_is_a_late_success(server: RunningServer):
    """Two messages with a 30 s Messenger validity: one to the sandbox user who never reads (a
    SEEN step: delivered, not read, so SMS; the read comes after), one (DELIVERED, the default
    scenario) to a person whose delivery comes only after the failover."""
    graph = server.gateway.graph_simulator
    assert graph is not None
    graph.set_never_deliver(sb.PAGE_ID, sb.PSID)
    seen = await scenario(server, "SEEN")
    fast = {"validityPeriod": 30, "validityPeriodTimeUnit": "SECONDS"}
    async with Receiver() as receiver:
        unread = await send(
            server,
            {
                "scenarioKey": seen,
                "destinations": [
                    {"to": {"phoneNumber": "41793026727", "facebookUserKey": sb.USER_KEY_UNREAD}}
                ],
                "facebook": {"text": "nobody reads this", **fast},
                "sms": {"text": "SMS as nobody read"},
            },
        )
        late = await send(
            server,
            {
                "destinations": [{"to": {"phoneNumber": "41793026728", "facebookUserKey": sb.USER_KEY}}],
                "facebook": {"text": "delivered too late", **fast},
                "sms": {"text": "SMS as Messenger was late"},
                "notifyUrl": receiver.url,
                "intermediateReport": True,
            },
        )
        report = (await final_reports(server, {unread}, timeout_s=45))[unread]
        assert report["channel"] == "SMS" and report["status"]["name"] == "DELIVERED_TO_HANDSET"
        fb, sms = await attempts(server, unread)
        assert fb["status"]["name"] == "EXPIRED_EXPIRED" and fb["error"]["name"] == "EC_VALIDITY_EXPIRED"
        assert "deliveredAt" in fb and "seenAt" not in fb  # delivered, never read
        assert sms["status"]["name"] == "DELIVERED_TO_HANDSET" and sms_sent(server, "SMS as nobody read")

        # the failed Messenger step's intermediate report, then the SMS's final one
        pushed = await receiver.wait_for(2, timeout_s=45)
        assert [(r["channel"], r["status"]["name"]) for r in pushed] == [
            ("FACEBOOK", "EXPIRED_EXPIRED"),
            ("SMS", "DELIVERED_TO_HANDSET"),
        ]
        # Meta's delivery of the Messenger message comes now, after the failover
        (mid,) = [
            r.response["message_id"]
            for r in graph.requests
            if isinstance(r.response, dict) and (r.body or {}).get("message", {}).get("metadata") == late
        ]
        now_ms = int(time.time() * 1000)
        await graph.post_event(
            sb.PAGE_ID,
            {
                "sender": {"id": sb.PSID},
                "recipient": {"id": sb.PAGE_ID},
                "timestamp": now_ms,
                "delivery": {"mids": [mid], "watermark": now_ms},
            },
        )
        (*_, last) = await receiver.wait_for(3)
        assert (last["channel"], last["status"]["name"]) == ("FACEBOOK", "DELIVERED_TO_HANDSET")
    # and the person who had not read reads now: the read names no message, its watermark covers
    # the Messenger step that expired unread
    now_ms = int(time.time() * 1000)
    read = {"sender": {"id": sb.PSID_UNREAD}, "recipient": {"id": sb.PAGE_ID}, "timestamp": now_ms}
    await graph.post_event(sb.PAGE_ID, {**read, "read": {"watermark": now_ms}})
    await server.until_idle()
    fb, _ = await attempts(server, unread)
    assert fb["status"]["name"] == "EXPIRED_EXPIRED" and "seenAt" in fb
    assert fb["lateDelivery"]["status"]["name"] == "DELIVERED_TO_HANDSET"
    fb, sms = await attempts(server, late)
    assert fb["status"]["name"] == "EXPIRED_EXPIRED"
    assert fb["lateDelivery"]["status"]["name"] == "DELIVERED_TO_HANDSET"
    assert sms["status"]["name"] == "DELIVERED_TO_HANDSET"  # delivered twice: both channels paid
    steps = {
        s["scenarioKey"]: s["steps"]
        for s in json_of(await server.client.get("/omni/1/analytics", headers=BASIC))["scenarios"]
    }
    assert steps[sb.SCENARIO_KEY][0]["lateSuccess"] == 1
    assert steps[seen][0]["failed"]["expired"] == 1 and steps[seen][0]["lateSuccess"] == 1
    assert 'omnirelay_receipts_total{result="late"} 2.0' in (await server.client.get("/metrics")).text
