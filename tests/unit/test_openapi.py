"""The OpenAPI document: valid OpenAPI 3.1, every route of the app documented, and the documented
schemas accept the seed examples (requests and Infobip's published responses) verbatim."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate
from starlette.routing import Route

from omnirelay.domain.statuses import StatusGroup
from omnirelay.http import openapi, params
from omnirelay.http.app import create_app
from tests.e2e.seeds import EXAMPLES
from tests.e2e.test_facebook_seeds import parse_http


def load() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(openapi.document(create_app(None).routes))
    return doc


def validator(doc: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """A validator for one schema of the document (its $refs resolve against the document)."""
    root = {**schema, "components": doc["components"]}
    return jsonschema.Draft202012Validator(root)


def request_schema(doc: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    schema: dict[str, Any] = doc["paths"][path][method.lower()]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    return schema


def response_schema(doc: dict[str, Any], method: str, path: str, status: int) -> dict[str, Any]:
    answer = doc["paths"][path][method.lower()]["responses"][str(status)]
    if "$ref" in answer:
        answer = doc["components"]["responses"][answer["$ref"].rsplit("/", 1)[-1]]
    schema: dict[str, Any] = answer["content"]["application/json"]["schema"]
    return schema


def check_request(doc: dict[str, Any], method: str, path: str, body: Any) -> None:
    validator(doc, request_schema(doc, method, path)).validate(body)


def check_response(doc: dict[str, Any], method: str, path: str, status: int, body: Any) -> None:
    validator(doc, response_schema(doc, method, path, status)).validate(body)


def test_the_document_is_valid_openapi_3_1() -> None:
    doc = load()
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_every_route_is_documented_and_every_documented_operation_routed() -> None:
    routes = create_app(None).routes
    assert openapi.undocumented(routes) == []
    assert openapi.unrouted(routes) == []
    doc = load()
    for method, path, _route in openapi.endpoints(routes):
        assert method.lower() in doc["paths"][path], (method, path)


def test_a_new_route_without_documentation_is_caught() -> None:
    async def extra(_request: Any) -> Any:  # pragma: no cover - never called
        raise AssertionError

    routes = [*create_app(None).routes, Route("/omni/1/extra", extra, methods=["GET"])]
    assert openapi.undocumented(routes) == ["GET /omni/1/extra"]


def test_security_errors_and_parameters_follow_the_route() -> None:
    doc = load()
    paths = doc["paths"]
    account = [{"basic": []}, {"app": []}, {"ibsso": []}]
    assert paths["/omni/1/advanced"]["post"]["security"] == account
    assert paths["/admin/1/connectors"]["get"]["security"] == [{"operator": []}]
    assert doc["components"]["securitySchemes"]["operator"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "The operator token (OMNIRELAY_OPERATOR_TOKEN)",
    }
    for path in ("/webhooks/facebook/{applicationKey}", "/health", "/ready", "/metrics", "/docs"):
        for op in paths[path].values():
            assert op["security"] == [], path

    advanced = paths["/omni/1/advanced"]["post"]
    assert set(advanced["responses"]) == {"200", "400", "401", "409", "413", "415", "429", "500", "503"}
    assert [p["name"] for p in advanced["parameters"]] == ["Idempotency-Key"]
    get_scenario = paths["/omni/1/scenarios/{key}"]["get"]
    assert "404" in get_scenario["responses"] and "415" not in get_scenario["responses"]
    assert get_scenario["parameters"][0] | {"schema": None} == {
        "name": "key",
        "in": "path",
        "required": True,
        "description": "Scenario or application key",
        "schema": None,
    }
    assert paths["/omni/1/scenarios/{key}"]["delete"]["responses"]["204"] == {"description": "No content"}

    reports = {p["name"]: p for p in paths["/omni/1/reports"]["get"]["parameters"]}
    assert set(reports) == {"bulkId", "messageId", "channel", "limit"}
    assert reports["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}
    logs = {p["name"] for p in paths["/omni/1/logs"]["get"]["parameters"]}
    assert {"from", "to", "bulkId", "messageId", "generalStatus", "channel", "sentSince", "sentUntil"} <= logs
    assert "Retry-After" in doc["components"]["responses"]["TooManyRequests"]["headers"]


def test_the_status_groups_of_the_logs_filter_are_the_domains() -> None:
    assert set(params.StatusGroupName.__args__) == set(StatusGroup.__members__)


def _json_body(name: str) -> Any:
    raw = (EXAMPLES / name).read_bytes()
    if raw.startswith((b"POST", b"GET", b"PUT")):
        *_, body = parse_http(raw)
    else:
        head, sep, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
        body = body if sep and head.startswith(b"HTTP/") else raw
    return json.loads(body)


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("000-*-request.http")))
def test_the_facebook_seed_requests_match_the_schema(name: str) -> None:
    check_request(load(), "POST", "/facebook/1/single", _json_body(name))


@pytest.mark.parametrize(
    ("request_name", "response_name", "path"),
    [
        ("004-05-request.http", "004-06-response.http", "/omni/1/scenarios"),
        ("004-07-request.http", "004-08-response.http", "/omni/1/advanced"),
        ("004-09-request.http", "004-10-response.http", "/omni/1/advanced"),
        ("004-11-request.http", "004-12-response.http", "/omni/1/advanced"),
    ],
)
def test_the_omni_seed_examples_match_the_schema(request_name: str, response_name: str, path: str) -> None:
    doc = load()
    check_request(doc, "POST", path, _json_body(request_name))
    check_response(doc, "POST", path, 200, _json_body(response_name))


def test_the_seed_report_pull_matches_the_schema() -> None:
    check_response(load(), "GET", "/omni/1/reports", 200, _json_body("004-14-response.http"))


def test_a_wrong_body_does_not_match() -> None:
    doc = load()
    with pytest.raises(jsonschema.ValidationError):
        check_request(doc, "POST", "/facebook/1/single", {"from": "x", "to": "y", "message": {"type": "FAX"}})
    with pytest.raises(jsonschema.ValidationError):
        check_response(doc, "GET", "/omni/1/reports", 200, {"results": [{"messageId": "m"}]})


@pytest.mark.parametrize(
    ("path", "payload"), [("/facebook/1/single", "message"), ("/omni/1/advanced", "facebook")]
)
def test_messaging_type_and_tag_are_documented_extension_fields(path: str, payload: str) -> None:
    doc = load()
    fields = {"/facebook/1/single": "FacebookMessageIn", "/omni/1/advanced": "FacebookOmniIn"}
    properties = doc["components"]["schemas"][fields[path]]["properties"]
    (kind,) = [s for s in properties["messagingType"]["anyOf"] if "enum" in s]
    assert set(kind["enum"]) == {"RESPONSE", "UPDATE", "MESSAGE_TAG"}
    assert "omnirelay extension" in kind["description"] and "UPDATE (the default)" in kind["description"]
    (tag,) = [s for s in properties["tag"]["anyOf"] if "enum" in s]
    assert set(tag["enum"]) == {
        "CONFIRMED_EVENT_UPDATE",
        "POST_PURCHASE_UPDATE",
        "ACCOUNT_UPDATE",
        "HUMAN_AGENT",
    }
    base: dict[str, Any] = (
        {"from": "A", "to": "B", "message": {"type": "TEXT", "text": "x"}}
        if payload == "message"
        else {"destinations": [{"to": {"phoneNumber": "41793026727"}}], "facebook": {"text": "x"}}
    )
    tagged = json.loads(json.dumps(base))
    tagged[payload].update({"messagingType": "MESSAGE_TAG", "tag": "ACCOUNT_UPDATE"})
    check_request(doc, "POST", path, tagged)
    wrong = json.loads(json.dumps(base))
    wrong[payload]["messagingType"] = "PROMOTION"
    with pytest.raises(jsonschema.ValidationError):
        check_request(doc, "POST", path, wrong)


def test_the_documents_whitespace_is_what_strip_removes():
    """`patterns.SPACE` names exactly the characters `str.isspace` is true of (what the server's
    `strip()` and blank checks see), so the document's patterns and the server agree."""
    import re

    from omnirelay.http import patterns

    space = re.compile(f"[{patterns.SPACE}]")
    assert [c for c in map(chr, range(0x110000)) if bool(space.fullmatch(c)) != c.isspace()] == []
