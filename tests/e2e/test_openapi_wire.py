"""Real requests and answers of a sandbox server validate against the OpenAPI document it serves:
the seed sends, report pulls, logs, a scenario create, error bodies and the operations endpoints."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.conftest import BASIC, RunningServer, json_of
from tests.e2e.seeds import EXAMPLES
from tests.e2e.test_facebook_seeds import parse_http, pull_until
from tests.e2e.test_omni_flows import final_reports
from tests.unit.test_openapi import check_request, check_response


def seed(name: str) -> tuple[str, str, list[tuple[str, str]], bytes]:
    return parse_http((EXAMPLES / name).read_bytes())


async def test_real_traffic_validates_against_the_served_document(server: RunningServer) -> None:
    doc: dict[str, Any] = json_of(await server.client.get("/openapi.json"))
    assert "swagger" in (await server.client.get("/docs")).text.lower()

    # a seed request of /facebook/1/single, and its answer
    method, target, headers, body = seed("000-01-request.http")
    check_request(doc, method, target, json.loads(body))
    r = await server.client.request(method, target, headers=headers, content=body)
    assert r.status_code == 200, r.text
    check_response(doc, method, target, 200, json_of(r))
    facebook_id = json_of(r)["messageId"]

    # a seed request of /omni/1/advanced (Messenger fails, SMS delivers), and its answer
    method, target, headers, body = seed("004-07-request.http")
    check_request(doc, method, target, json.loads(body))
    r = await server.client.request(method, target, headers=headers, content=body)
    assert r.status_code == 200, r.text
    check_response(doc, method, target, 200, json_of(r))
    omni_id = json_of(r)["messages"][0]["messageId"]

    # report pulls (the raw rows the store keeps) and logs (with attempts)
    rows = await pull_until(server, {facebook_id})
    check_response(doc, "GET", "/facebook/1/reports", 200, {"results": rows})
    reports = await final_reports(server, {omni_id})
    check_response(doc, "GET", "/omni/1/reports", 200, {"results": list(reports.values())})
    assert reports[omni_id]["channel"] == "SMS"
    for api, message_id in (("omni", omni_id), ("facebook", facebook_id)):
        r = await server.client.get(f"/{api}/1/logs", params={"messageId": message_id}, headers=BASIC)
        logs = json_of(r)
        assert logs["results"] and logs["results"][0]["attempts"], logs
        check_response(doc, "GET", f"/{api}/1/logs", 200, logs)

    # a scenario create (the seed's), get and list
    method, target, headers, body = seed("004-05-request.http")
    check_request(doc, method, target, json.loads(body))
    r = await server.client.request(method, target, headers=headers, content=body)
    assert r.status_code == 200, r.text
    check_response(doc, method, target, 200, json_of(r))
    key = json_of(r)["key"]
    r = await server.client.get(f"/omni/1/scenarios/{key}", headers=BASIC)
    check_response(doc, "GET", "/omni/1/scenarios/{key}", 200, json_of(r))
    r = await server.client.get("/omni/1/scenarios", headers=BASIC)
    check_response(doc, "GET", "/omni/1/scenarios", 200, json_of(r))

    # error bodies, each under the status the document lists for the operation
    r = await server.client.get("/omni/1/scenarios/00000000000000000000000000000000", headers=BASIC)
    assert r.status_code == 404
    check_response(doc, "GET", "/omni/1/scenarios/{key}", 404, json_of(r))
    r = await server.client.post(
        "/omni/1/advanced",
        content=b'{"destinations": 5}',
        headers={**BASIC, "content-type": "application/json"},
    )
    assert r.status_code == 400 and json_of(r)["requestError"]["serviceException"]["validationErrors"]
    check_response(doc, "POST", "/omni/1/advanced", 400, json_of(r))
    r = await server.client.get("/omni/1/reports")
    assert r.status_code == 401
    check_response(doc, "GET", "/omni/1/reports", 401, json_of(r))
    r = await server.client.post(
        "/facebook/1/single", content=b"x", headers={**BASIC, "content-type": "text/plain"}
    )
    assert r.status_code == 415
    check_response(doc, "POST", "/facebook/1/single", 415, json_of(r))

    # operations
    check_response(doc, "GET", "/health", 200, json_of(await server.client.get("/health")))
    check_response(doc, "GET", "/ready", 200, json_of(await server.client.get("/ready")))
    r = await server.client.get(
        "/admin/1/connectors", headers={"Authorization": "Bearer sandbox-operator-token"}
    )
    check_response(doc, "GET", "/admin/1/connectors", 200, json_of(r))
