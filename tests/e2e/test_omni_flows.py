"""OMNI flows end to end through the sandbox's simulators (issue: OMNI failover, reports, pushes)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from omnirelay import sandbox_data as sb
from omnirelay.config import Settings
from omnirelay.domain.times import format_time
from tests.e2e.conftest import BASIC, RunningServer, json_of
from tests.e2e.receiver import Receiver
from tests.e2e.seeds import EXAMPLES

SEEDS = EXAMPLES


def parse_http(path: Path) -> tuple[str, str, dict[str, str], bytes]:
    raw = path.read_bytes().replace(b"\r\n", b"\n")
    head, _, body = raw.partition(b"\n\n")
    lines = head.decode().split("\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = dict(line.split(": ", 1) for line in lines[1:] if line.strip())
    headers.pop("Host", None)
    return method, target, headers, body


async def final_reports(
    server: RunningServer, message_ids: set[str], timeout_s: float = 20, api: str = "omni"
) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout_s
    while set(found) != message_ids:
        assert time.monotonic() < deadline, f"no final report for {message_ids - set(found)}"
        for r in json_of(await server.client.get(f"/{api}/1/reports?limit=1000", headers=BASIC))["results"]:
            assert r["messageId"] not in found, "a report was handed out twice"
            found[r["messageId"]] = r
        await asyncio.sleep(0.1)  # polling for a condition, under a deadline
    return found


async def test_seed_omni_examples(server: RunningServer):
    sent: dict[str, str] = {}
    for name in ("004-05-request.http", "004-07-request.http", "004-09-request.http", "004-11-request.http"):
        method, target, headers, body = parse_http(SEEDS / name)
        r = await server.client.request(method, target, headers=headers, content=body)
        assert r.status_code == 200, (name, r.text)
        out = json_of(r)
        expected = json.loads(
            (
                SEEDS
                / name.replace("request", "response")
                .replace("-05-", "-06-")
                .replace("-07-", "-08-")
                .replace("-09-", "-10-")
                .replace("-11-", "-12-")
            ).read_text()
        )
        if name.startswith("004-05"):
            assert set(out) == set(expected) and out["flow"] == expected["flow"] and out["default"] is True
            continue
        (m,) = out["messages"]
        assert set(m) == set(expected["messages"][0])
        assert m["status"] == expected["messages"][0]["status"]
        assert m["to"] == json.loads(body)["destinations"][0]["to"]  # echoed as sent
        sent[name] = m["messageId"]
    reports = await final_reports(server, set(sent.values()))
    phone_only = reports[sent["004-07-request.http"]]
    assert phone_only["channel"] == "SMS" and phone_only["status"]["name"] == "DELIVERED_TO_HANDSET"
    assert phone_only["to"] == "41793026727"
    assert reports[sent["004-11-request.http"]]["channel"] == "SMS"
    user_key = reports[sent["004-09-request.http"]]
    assert user_key["channel"] == "FACEBOOK" and user_key["status"]["name"] == "DELIVERED_TO_HANDSET"
    # the seed's GET reports answers, and every report came out exactly once
    method, target, headers, _ = parse_http(SEEDS / "004-13-request.http")
    again = await server.client.request(method, target, headers=headers)
    assert again.status_code == 200 and json_of(again) == {"results": []}
    # logs show Messenger's rejection, then SMS, for the phone-only message
    logs = json_of(
        await server.client.get(f"/omni/1/logs?messageId={sent['004-07-request.http']}", headers=BASIC)
    )
    (row,) = logs["results"]
    assert [a["channel"] for a in row["attempts"]] == ["FACEBOOK", "SMS"]
    assert row["attempts"][0]["status"]["groupName"] == "REJECTED"
    assert row["attempts"][1]["status"]["name"] == "DELIVERED_TO_HANDSET"
    assert row["from"] == "InfoSMS" and row["text"] == "This is the SMS failover message"


async def test_sms_failure_after_messenger_failure_is_final(server: RunningServer):
    body = {
        "destinations": [{"to": {"phoneNumber": "41790000005"}}],  # the SMSC answers UNDELIV
        "facebook": {"text": "x"},
        "sms": {"text": "y"},
    }
    (m,) = json_of(await server.client.post("/omni/1/advanced", json=body, headers=BASIC))["messages"]
    report = (await final_reports(server, {m["messageId"]}))[m["messageId"]]
    assert report["channel"] == "SMS" and report["status"]["name"] == "UNDELIVERABLE_NOT_DELIVERED"
    assert report["error"]["name"] != "NO_ERROR"


async def test_scheduled_send(server: RunningServer):
    at = datetime.now(UTC) + timedelta(seconds=2)
    body = {
        "destinations": [{"to": {"phoneNumber": "41793026727"}}],
        "sms": {"text": "later"},
        "sendAt": format_time(at),
    }
    (m,) = json_of(await server.client.post("/omni/1/advanced", json=body, headers=BASIC))["messages"]
    await server.until_idle()  # nothing is due before `sendAt`: had it been, it would have gone out
    assert server.gateway.smsc_simulator is not None
    assert not [s for s in server.gateway.smsc_simulator.submits if s.short_message.endswith(b"later")]
    report = (await final_reports(server, {m["messageId"]}))[m["messageId"]]
    assert report["status"]["name"] == "DELIVERED_TO_HANDSET"
    sent_at = datetime.strptime(report["sentAt"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert sent_at >= at - timedelta(milliseconds=5)


async def test_intermediate_reports_and_pushes_with_a_failing_then_recovering_receiver(tmp_path: Path):
    from tests.e2e.conftest import free_port, start_server

    settings = Settings(
        port=free_port(), data_dir=tmp_path, idle_poll_s=0.05, push_retry_base_s=0.2, push_retry_step_s=0.2
    )
    srv, task, _app = await start_server(settings)
    try:
        async with Receiver(fail_first=2) as receiver:
            import httpx

            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.port}") as client:
                body = {
                    "destinations": [{"to": {"phoneNumber": "41793026727"}}],
                    "facebook": {"text": "x"},
                    "sms": {"text": "y"},
                    "notifyUrl": receiver.url,
                    "intermediateReport": True,
                    "callbackData": "order-42",
                }
                (m,) = (await client.post("/omni/1/advanced", json=body, headers=BASIC)).json()["messages"]
                results = await receiver.wait_for(2)
                assert receiver.attempts >= 3  # two refusals, then retried
                assert [r["channel"] for r in results] == ["FACEBOOK", "SMS"]
                assert results[0]["status"]["groupName"] == "REJECTED"
                assert results[1]["status"]["name"] == "DELIVERED_TO_HANDSET"
                assert all(
                    r["messageId"] == m["messageId"] and r["callbackData"] == "order-42" for r in results
                )
                # pushed successfully: not also queued for pull
                assert (await client.get("/omni/1/reports", headers=BASIC)).json() == {"results": []}
    finally:
        srv.should_exit = True
        await task


async def test_a_push_that_never_succeeds_lands_in_the_pull_queue(tmp_path: Path):
    from tests.e2e.conftest import free_port, start_server

    settings = Settings(
        port=free_port(),
        data_dir=tmp_path,
        idle_poll_s=0.05,
        push_retry_base_s=0.1,
        push_retry_step_s=0.1,
        push_retry_period_h=1 / 3600,
    )  # give up after 1 s
    srv, task, _app = await start_server(settings)
    try:
        import httpx

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.port}") as client:
            body = {
                "destinations": [{"to": {"phoneNumber": "41793026727"}}],
                "sms": {"text": "y"},
                "notifyUrl": f"http://127.0.0.1:{free_port()}/nobody-listens",
            }
            (m,) = (await client.post("/omni/1/advanced", json=body, headers=BASIC)).json()["messages"]
            deadline = time.monotonic() + 15
            while True:
                results = (await client.get("/omni/1/reports", headers=BASIC)).json()["results"]
                if results:
                    break
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)  # polling for a condition, under a deadline
            assert [r["messageId"] for r in results] == [m["messageId"]]
    finally:
        srv.should_exit = True
        await task


async def test_messenger_by_phone_number_ends_when_meta_takes_it(server: RunningServer):
    # Meta matches the number to a person (Customer Matching) and, since 2018-02-19, posts no
    # delivery for a send by phone number: the FACEBOOK step ends at acceptance, no SMS is sent.
    graph = server.gateway.graph_simulator
    smsc = server.gateway.smsc_simulator
    assert graph is not None and smsc is not None
    graph.add_user(sb.PAGE_ID, "2000000000000777", phone_number="+41 79 555 00 77")
    body = {
        "destinations": [{"to": {"phoneNumber": "41795550077"}}],
        "facebook": {"text": "by phone number"},
        "sms": {"text": "SMS that must not go"},
    }
    (m,) = json_of(await server.client.post("/omni/1/advanced", json=body, headers=BASIC))["messages"]
    report = (await final_reports(server, {m["messageId"]}))[m["messageId"]]
    assert report["channel"] == "FACEBOOK"
    assert (report["status"]["groupName"], report["status"]["name"]) == ("DELIVERED", "DELIVERED_TO_OPERATOR")
    assert report["error"]["name"] == "NO_ERROR"
    sends = [r for r in graph.requests if r.recipient == {"phone_number": "+41795550077"}]
    assert len(sends) == 1 and sends[0].http_status == 200
    assert not [s for s in smsc.submits if s.short_message.endswith(b"must not go")]
    (row,) = json_of(await server.client.get(f"/omni/1/logs?messageId={m['messageId']}", headers=BASIC))[
        "results"
    ]
    assert [a["channel"] for a in row["attempts"]] == ["FACEBOOK"]
    assert row["attempts"][0]["status"]["name"] == "DELIVERED_TO_OPERATOR"


@pytest.mark.slow
async def test_expiry_driven_failover(server: RunningServer):
    graph = server.gateway.graph_simulator
    assert graph is not None
    graph.set_never_deliver(sb.PAGE_ID, sb.PSID)  # Messenger accepts but never confirms delivery
    body = {
        "destinations": [{"to": {"phoneNumber": "41793026727", "facebookUserKey": sb.USER_KEY}}],
        "facebook": {"text": "x", "validityPeriod": 30, "validityPeriodTimeUnit": "SECONDS"},
        "sms": {"text": "y"},
    }
    (m,) = json_of(await server.client.post("/omni/1/advanced", json=body, headers=BASIC))["messages"]
    report = (await final_reports(server, {m["messageId"]}, timeout_s=45))[m["messageId"]]
    assert report["channel"] == "SMS" and report["status"]["name"] == "DELIVERED_TO_HANDSET"
    (row,) = json_of(await server.client.get(f"/omni/1/logs?messageId={m['messageId']}", headers=BASIC))[
        "results"
    ]
    assert row["attempts"][0]["status"]["name"] == "EXPIRED_EXPIRED"


async def test_logs_filters(server: RunningServer):
    body = {
        "bulkId": "B-LOGS",
        "destinations": [{"to": {"phoneNumber": "41793026727"}}, {"to": {"phoneNumber": "41793026728"}}],
        "sms": {"text": "z"},
    }
    out = json_of(await server.client.post("/omni/1/advanced", json=body, headers=BASIC))
    ids = {m["messageId"] for m in out["messages"]}
    await final_reports(server, ids)
    rows = json_of(await server.client.get("/omni/1/logs?bulkId=B-LOGS", headers=BASIC))["results"]
    assert {r["messageId"] for r in rows} == ids
    assert rows[0]["sentAt"] >= rows[1]["sentAt"]  # newest first
    q = "/omni/1/logs?bulkid=B-LOGS&generalStatus=DELIVERED&to=41793026728&channel=SMS&limit=10"
    (only,) = json_of(await server.client.get(q, headers=BASIC))["results"]
    assert only["to"] == "41793026728"
    assert (
        json_of(await server.client.get("/omni/1/logs?bulkId=B-LOGS&generalStatus=REJECTED", headers=BASIC))[
            "results"
        ]
        == []
    )
    # reading logs does not consume them
    assert len(json_of(await server.client.get("/omni/1/logs?bulkId=B-LOGS", headers=BASIC))["results"]) == 2
    bad = await server.client.get("/omni/1/logs?generalStatus=LOST", headers=BASIC)
    assert bad.status_code == 400
