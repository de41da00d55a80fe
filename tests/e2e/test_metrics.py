"""`/metrics` (docs/api.md#operations): after a seed send and its report, the counters moved and the gauges
are there."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from omnirelay.domain.times import format_time
from tests.e2e.conftest import BASIC, RunningServer
from tests.e2e.seeds import EXAMPLES
from tests.e2e.test_facebook_seeds import parse_http
from tests.e2e.test_omni_flows import final_reports

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(server: RunningServer) -> Samples:
    r = await server.client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_counters_move_and_gauges_are_sampled(server: RunningServer) -> None:
    before = await scrape(server)
    assert value(before, "omnirelay_messages_accepted_total", api="OMNI") == 0
    method, target, headers, body = parse_http((EXAMPLES / "004-07-request.http").read_bytes())
    r = await server.client.request(
        method, target, headers=[h for h in headers if h[0] != "Host"], content=body
    )
    assert r.status_code == 200, r.text
    message_id = r.json()["messages"][0]["messageId"]
    report = (await final_reports(server, {message_id}))[message_id]
    assert report["channel"] == "SMS" and report["status"]["groupName"] == "DELIVERED"

    after = await scrape(server)
    assert value(after, "omnirelay_messages_accepted_total", api="OMNI") == 1
    assert value(after, "omnirelay_messages_final_total", channel="SMS", status_group="DELIVERED") == 1
    # the phone number has no Messenger user: the FACEBOOK step was rejected and the message moved on
    assert value(after, "omnirelay_failovers_total", channel="FACEBOOK") == 1
    assert value(after, "omnirelay_channel_send_errors_total", channel="FACEBOOK", kind="rejected") == 1
    assert value(after, "omnirelay_receipts_total", result="applied") >= 1
    ok = value(
        after, "omnirelay_http_requests_total", route="/omni/1/advanced", method="POST", status_class="2xx"
    )
    assert ok == 1
    pulls = (
        "omnirelay_http_requests_total",
        (("method", "GET"), ("route", "/omni/1/reports"), ("status_class", "2xx")),
    )
    assert after[pulls] >= 1
    # gauges, sampled at scrape time: nothing waits any more, the report was pulled
    for waiting_for in ("due", "sending", "scheduled", "receipt"):
        assert ("omnirelay_messages_waiting", (("waiting_for", waiting_for),)) in after
    assert value(after, "omnirelay_reports_queued", queue="pull") == 0
    assert ("omnirelay_reports_queued", (("queue", "push"),)) in after
    assert value(after, "omnirelay_smpp_bound", connector="sandbox") == 1
    assert value(after, "omnirelay_smpp_binds_up") == 1
    assert any(name.startswith("process_") for name, _ in after)

    # an unknown path counts as unmatched
    assert (await server.client.get("/nowhere")).status_code == 404
    later = await scrape(server)
    assert (
        value(later, "omnirelay_http_requests_total", route="unmatched", method="ANY", status_class="4xx")
        == 1
    )


async def test_a_scheduled_message_shows_in_the_gauges(server: RunningServer) -> None:
    send_at = format_time(datetime.now(UTC) + timedelta(hours=1))
    body = {
        "destinations": [{"to": {"phoneNumber": "41793026727"}}],
        "sms": {"text": "later"},
        "sendAt": send_at,
    }
    r = await server.client.post("/omni/1/advanced", json=body, headers=BASIC)
    assert r.status_code == 200, r.text
    samples = await scrape(server)
    assert value(samples, "omnirelay_messages_waiting", waiting_for="scheduled") == 1
    assert value(samples, "omnirelay_messages_waiting", waiting_for="due") == 0
