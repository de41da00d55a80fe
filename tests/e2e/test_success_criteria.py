"""Success criteria, late outcomes and the funnel end to end: the HTTP API, the real Graph client
and the sandbox's simulators over local sockets (docs/api.md#success-criteria,
docs/api.md#late-outcomes, docs/api.md#analytics)."""

from __future__ import annotations

from omnirelay import sandbox_data as sb
from omnirelay.services.accounts import hash_password
from tests.e2e.conftest import BASIC, RunningServer, json_of
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
