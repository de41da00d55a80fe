"""The OpenAPI document, generated from the msgspec types (never written by hand).

The operations are the app's routes: `document(routes)` walks them and looks each (method, path)
up in `OPERATIONS`, which names the msgspec types of its body, answer and parameters. Schemas come
from `msgspec.json.schema_components`; the error answers, the security of each operation and the
parameters are derived from the same table. A route missing from the table is `undocumented`, and
a test fails on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from starlette.routing import BaseRoute, Route

from omnirelay import __version__
from omnirelay.http import admin
from omnirelay.http import messenger_types as mt
from omnirelay.http import params as p
from omnirelay.http import types as t

Auth = Literal["account", "session", "operator", "none"]

JSON = "application/json"
METRICS_MEDIA = "text/plain; version=0.0.4"


@dataclass(frozen=True, slots=True)
class Op:
    """What one route takes and answers, as msgspec types."""

    summary: str
    auth: Auth = "account"
    body: Any = None  # request body type (JSON unless `raw_body`)
    ok: Any = None  # answer type; None: no content
    status: int = 200
    media: str = JSON  # of the answer
    query: type[msgspec.Struct] | None = None
    headers: type[msgspec.Struct] | None = None
    idempotent: bool = False  # honours Idempotency-Key (409 on reuse with another body)
    raw_body: bool = False  # the body is read as bytes (no 415), e.g. Meta's signed webhook
    errors: frozenset[int] = frozenset()  # beyond those derived from the rest
    description: str = ""


OPERATIONS: dict[tuple[str, str], Op] = {
    # operations
    ("GET", "/health"): Op("Liveness", auth="none", ok=t.HealthOut),
    ("GET", "/ready"): Op(
        "Readiness: storage reachable and SMPP connectors bound (503 otherwise)", auth="none", ok=t.ReadyOut
    ),
    ("GET", "/metrics"): Op("Prometheus metrics", auth="none", ok=str, media=METRICS_MEDIA),
    ("GET", "/openapi.json"): Op("This OpenAPI document", auth="none", ok=dict[str, Any]),
    ("GET", "/docs"): Op("The OpenAPI document, browsable", auth="none", ok=str, media="text/html"),
    ("GET", "/docs/swagger-ui-bundle.js"): Op(
        "Swagger UI's script, for /docs", auth="none", ok=str, media="text/javascript"
    ),
    ("GET", "/docs/swagger-ui.css"): Op(
        "Swagger UI's stylesheet, for /docs", auth="none", ok=str, media="text/css"
    ),
    # sessions
    ("POST", "/auth/1/session"): Op(
        "Open an IBSSO session (1 h idle expiry)",
        auth="none",
        body=t.SessionIn,
        ok=t.SessionOut,
        errors=frozenset({401, 503}),
    ),
    ("DELETE", "/auth/1/session"): Op(
        "Close the IBSSO session", auth="session", status=204, errors=frozenset({401, 503})
    ),
    # Facebook Messenger
    ("POST", "/facebook/1/single"): Op(
        "Send one Messenger message",
        body=t.FacebookSingleIn,
        ok=t.FacebookSingleOut,
        headers=p.IdempotencyHeaders,
        idempotent=True,
        description="Per-destination problems (unknown application, unregistered user) are not HTTP "
        "errors: the answer is 200 with a REJECTED status, and the message gets its final report.",
    ),
    ("GET", "/facebook/1/reports"): Op(
        "Delivery reports of Messenger messages, oldest first, each returned once",
        ok=t.ReportsOut,
        query=p.ReportsQuery,
    ),
    ("GET", "/omni/1/analytics"): Op(
        "The funnel of the account's scenarios over a period, per step",
        ok=t.AnalyticsOut,
        query=p.AnalyticsQuery,
        description="omnirelay extension (docs/api.md#analytics). Read from the stored attempts of the "
        "OMNI messages accepted in [since, until): per scenario and step, how many were sent, met "
        "their success criterion, failed (by reason) and succeeded late, after failing over.",
    ),
    ("GET", "/facebook/1/logs"): Op(
        "Logs of Messenger messages, newest first", ok=t.LogsOut, query=p.LogsQuery
    ),
    ("POST", "/facebook/1/applications"): Op(
        "Create a Messenger application", body=mt.ApplicationCreateIn, ok=mt.ApplicationOut
    ),
    ("GET", "/facebook/1/applications"): Op("List the Messenger applications", ok=mt.ApplicationsOut),
    ("GET", "/facebook/1/applications/{key}"): Op("Get a Messenger application", ok=mt.ApplicationOut),
    ("PUT", "/facebook/1/applications/{key}"): Op(
        "Update a Messenger application (the fields present)",
        body=mt.ApplicationUpdateIn,
        ok=mt.ApplicationOut,
    ),
    ("DELETE", "/facebook/1/applications/{key}"): Op("Delete a Messenger application", status=204),
    ("GET", "/facebook/1/applications/{key}/users"): Op(
        "List the users of an application", ok=list[mt.UserOut], query=p.UsersQuery
    ),
    ("GET", "/facebook/1/applications/{key}/users/{userKey}"): Op("Get a user", ok=mt.UserOut),
    ("PUT", "/facebook/1/applications/{key}/users/{userKey}"): Op(
        "Set (or, with null, remove) a user's phone number", body=mt.UserPhoneIn, ok=mt.UserOut
    ),
    ("DELETE", "/facebook/1/applications/{key}/users/{userKey}"): Op("Delete a user", status=204),
    ("GET", "/webhooks/facebook/{applicationKey}"): Op(
        "Meta's webhook verification",
        auth="none",
        ok=str,
        media="text/plain",
        query=p.ChallengeQuery,
        errors=frozenset({403, 503}),
    ),
    ("POST", "/webhooks/facebook/{applicationKey}"): Op(
        "Meta's webhook notifications (messages, postbacks, deliveries, reads)",
        auth="none",
        body=dict[str, Any],
        raw_body=True,
        ok=Literal["EVENT_RECEIVED"],
        media="text/plain",
        headers=p.SignatureHeaders,
        errors=frozenset({403, 503}),
        description="Signed by Meta: a missing or wrong X-Hub-Signature-256 is 403 and nothing is processed.",
    ),
    # OMNI
    ("POST", "/omni/1/scenarios"): Op("Create a scenario", body=t.ScenarioCreate, ok=t.ScenarioOut),
    ("GET", "/omni/1/scenarios"): Op("List scenarios", ok=t.ScenariosOut, query=p.ScenariosQuery),
    ("GET", "/omni/1/scenarios/{key}"): Op("Get a scenario", ok=t.ScenarioOut),
    ("PUT", "/omni/1/scenarios/{key}"): Op("Update a scenario", body=t.ScenarioIn, ok=t.ScenarioOut),
    ("DELETE", "/omni/1/scenarios/{key}"): Op("Delete a scenario", status=204),
    ("POST", "/omni/1/advanced"): Op(
        "Send through a scenario, with content per channel",
        body=t.OmniAdvancedIn,
        ok=t.OmniOut,
        headers=p.IdempotencyHeaders,
        idempotent=True,
        description="One message per destination. Per-destination problems are not HTTP errors: that "
        "destination's status is a REJECTED one. Unknown scenarioKey, or none and no default: 400.",
    ),
    ("POST", "/omni/1/text"): Op(
        "Send one text through a scenario, on every channel",
        body=t.OmniTextIn,
        ok=t.OmniOut,
        headers=p.IdempotencyHeaders,
        idempotent=True,
    ),
    ("GET", "/omni/1/reports"): Op(
        "Delivery reports of OMNI messages, oldest first, each returned once",
        ok=t.ReportsOut,
        query=p.ReportsQuery,
    ),
    ("GET", "/omni/1/logs"): Op("Logs of OMNI messages, newest first", ok=t.LogsOut, query=p.LogsQuery),
    # operator
    ("POST", "/admin/1/connectors"): Op(
        "Add an SMPP connector",
        auth="operator",
        body=admin.ConnectorIn,
        ok=admin.ConnectorOut,
        errors=frozenset({409}),
    ),
    ("GET", "/admin/1/connectors"): Op("List the SMPP connectors", auth="operator", ok=admin.ConnectorsOut),
    ("GET", "/admin/1/connectors/{name}"): Op(
        "Get an SMPP connector", auth="operator", ok=admin.ConnectorOut
    ),
    ("PUT", "/admin/1/connectors/{name}"): Op(
        "Change an SMPP connector (the fields present), applied live",
        auth="operator",
        body=admin.ConnectorUpdateIn,
        ok=admin.ConnectorOut,
    ),
    ("DELETE", "/admin/1/connectors/{name}"): Op(
        "Remove an SMPP connector (409 while routes use it)",
        auth="operator",
        status=204,
        errors=frozenset({409}),
    ),
    ("POST", "/admin/1/routes"): Op(
        "Route a number prefix to a connector", auth="operator", body=admin.RouteIn, ok=admin.RouteOut
    ),
    ("GET", "/admin/1/routes"): Op("List the SMS routes", auth="operator", ok=admin.RoutesOut),
    ("DELETE", "/admin/1/routes/{prefix}"): Op("Remove an SMS route", auth="operator", status=204),
    ("GET", "/admin/1/nodes"): Op(
        "The gateway nodes on this database, live or not (by the database's clock)",
        auth="operator",
        ok=admin.NodesOut,
    ),
    ("POST", "/admin/1/prices"): Op(
        "Set a price", auth="operator", body=admin.PriceIn, ok=admin.ListedPriceOut
    ),
    ("GET", "/admin/1/prices"): Op("The price list", auth="operator", ok=admin.PricesOut),
    ("DELETE", "/admin/1/prices/{channel}/{country}"): Op("Remove a price", auth="operator", status=204),
}

SECURITY: dict[Auth, list[dict[str, list[str]]]] = {
    "account": [{"basic": []}, {"app": []}, {"ibsso": []}],
    "session": [{"ibsso": []}],
    "operator": [{"operator": []}],
    "none": [],
}

# HTTP status -> (component name, description); every body is the ApiError of docs/api.md#error-body
ERRORS: dict[int, tuple[str, str]] = {
    400: (
        "BadRequest",
        "BAD_REQUEST: malformed JSON, wrong types or limits; validationErrors names the field",
    ),
    401: ("Unauthorized", "UNAUTHORIZED: Invalid login details"),
    403: ("Forbidden", "FORBIDDEN"),
    404: ("NotFound", "NOT_FOUND (another account's keys and ids are not found either)"),
    405: ("MethodNotAllowed", "METHOD_NOT_ALLOWED: the path exists, not with this method"),
    409: ("Conflict", "CONFLICT"),
    413: ("PayloadTooLarge", "PAYLOAD_TOO_LARGE: body over the configured limit (default 1 MiB)"),
    415: ("UnsupportedMediaType", "UNSUPPORTED_MEDIA_TYPE: send application/json"),
    429: ("TooManyRequests", "TOO_MANY_REQUESTS: over the account's request rate; see Retry-After"),
    500: ("ServerError", "GENERAL_ERROR: Something went wrong"),
    503: ("ServiceUnavailable", "SERVICE_UNAVAILABLE: storage unavailable; nothing was accepted"),
}

TAGS = {
    "facebook": "Facebook Messenger",
    "omni": "OMNI",
    "auth": "Sessions",
    "admin": "Operator",
    "webhooks": "Meta webhook",
}

_PATH_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")


def endpoints(routes: Iterable[BaseRoute]) -> list[tuple[str, str, Route]]:
    """(method, path template, route) of every HTTP route; HEAD (Starlette's twin of GET) left out."""
    out: list[tuple[str, str, Route]] = []
    for route in routes:
        if isinstance(route, Route):
            out.extend((m, route.path, route) for m in sorted(route.methods or ()) if m != "HEAD")
    return out


def undocumented(routes: Iterable[BaseRoute]) -> list[str]:
    return [f"{m} {path}" for m, path, _ in endpoints(routes) if (m, path) not in OPERATIONS]


def unrouted(routes: Iterable[BaseRoute]) -> list[str]:
    routed = {(m, path) for m, path, _ in endpoints(routes)}
    return [f"{m} {path}" for m, path in OPERATIONS if (m, path) not in routed]


def errors_of(method: str, path: str, op: Op) -> list[int]:
    codes = {500, *op.errors}
    if op.auth == "account":
        codes |= {401, 429, 503}
    elif op.auth in ("operator", "session"):
        codes |= {401, 503}
    if op.body is not None:
        codes |= {400, 413} if op.raw_body else {400, 413, 415}
    if op.query is not None:
        codes.add(400)
    if op.idempotent:
        codes.add(409)
    if _PATH_PARAM.search(path):
        codes |= {400, 404}  # a path parameter out of its form (a prefix of letters), or with %00
    return sorted(codes)


def _parameters(struct: type[msgspec.Struct], where: str, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    own = schemas[struct.__name__]
    required = set(own.get("required", ()))
    out = []
    for name, schema in own["properties"].items():
        param: dict[str, Any] = {"name": name, "in": where, "required": where == "path" or name in required}
        if "description" in schema:
            param["description"] = schema["description"]
        param["schema"] = {k: v for k, v in schema.items() if k != "description"}
        out.append(param)
    return out


def _operation_id(route: Route, method: str) -> str:
    module = route.endpoint.__module__.rsplit(".", 1)[-1]
    return f"{module}.{route.endpoint.__name__}" if module != "app" else route.endpoint.__name__


def _any_object(type_: type) -> dict[str, Any]:
    """`object` (free-form JSON, e.g. the channels omnirelay accepts and ignores): any value."""
    if type_ is object:
        return {"description": "Any JSON value"}
    raise NotImplementedError(type_)


NO_NUL = "^[^\\u0000]*$"


def _no_nul(schema: Any) -> None:
    """Every string the API takes or gives holds no U+0000 (http/body.py refuses it anywhere in a
    body): each string schema without a pattern of its own gets this one."""
    if isinstance(schema, dict):
        if schema.get("type") == "string" and "pattern" not in schema and "enum" not in schema:
            schema["pattern"] = NO_NUL
        for value in schema.values():
            _no_nul(value)
    elif isinstance(schema, list):
        for value in schema:
            _no_nul(value)


def document(routes: Sequence[BaseRoute]) -> bytes:
    found = [
        (m, path, route, OPERATIONS[m, path])
        for m, path, route in endpoints(routes)
        if (m, path) in OPERATIONS
    ]
    where: dict[type[msgspec.Struct], str] = {p.PathParams: "path"}
    for *_, op in found:
        if op.query is not None:
            where[op.query] = "query"
        if op.headers is not None:
            where[op.headers] = "header"
    types: list[Any] = [t.ApiErrorOut, *where]
    for *_, op in found:
        types.extend(x for x in (op.body, op.ok) if x is not None and x not in types)
    refs, schemas = msgspec.json.schema_components(
        types, schema_hook=_any_object, ref_template="#/components/schemas/{name}"
    )
    ref: dict[Any, Any] = dict(zip(types, refs, strict=True))
    parameters = {struct: _parameters(struct, location, schemas) for struct, location in where.items()}
    path_params = {param["name"]: param for param in parameters[p.PathParams]}
    for struct in where:  # described as parameters, not as schemas
        del schemas[struct.__name__]
    _no_nul(schemas)

    paths: dict[str, dict[str, Any]] = {}
    for method, path, route, op in found:
        doc: dict[str, Any] = {
            "operationId": _operation_id(route, method),
            "summary": op.summary,
            "tags": [TAGS.get(path.split("/")[1], "Operations")],
            "security": SECURITY[op.auth],
        }
        if op.description:
            doc["description"] = op.description
        params = [path_params[name] for name in _PATH_PARAM.findall(path)]
        for described in (op.query, op.headers):
            if described is not None:
                params.extend(parameters[described])
        if params:
            doc["parameters"] = params
        if op.body is not None:
            doc["requestBody"] = {"required": True, "content": {JSON: {"schema": ref[op.body]}}}
        answer: dict[str, Any] = {"description": "OK" if op.status == 200 else "No content"}
        if op.ok is not None:
            answer["content"] = {op.media: {"schema": ref[op.ok]}}
        responses: dict[str, Any] = {str(op.status): answer}
        for code in errors_of(method, path, op):
            if path == "/ready" and code == 503:
                responses["503"] = {"description": "Not ready", "content": {JSON: {"schema": ref[op.ok]}}}
            else:
                responses[str(code)] = {"$ref": f"#/components/responses/{ERRORS[code][0]}"}
        doc["responses"] = responses
        paths.setdefault(path, {})[method.lower()] = doc

    error = {JSON: {"schema": ref[t.ApiErrorOut]}}
    responses_components: dict[str, Any] = {
        name: {"description": text, "content": error} for name, text in ERRORS.values()
    }
    allow, _ = msgspec.json.schema_components([str])
    responses_components["MethodNotAllowed"]["headers"] = {
        "Allow": {"description": "The methods the path is served with", "schema": allow[0]}
    }
    retry_after, _ = msgspec.json.schema_components([int])
    responses_components["TooManyRequests"]["headers"] = {
        "Retry-After": {"description": "Seconds to wait", "schema": retry_after[0]}
    }
    out = {
        "openapi": "3.1.0",
        "info": {
            "title": "omnirelay",
            "version": __version__,
            "description": "Messenger with SMS failover behind an Infobip-compatible API. Errors use "
            "Infobip's body (ApiErrorOut). A path called with a method it does not serve answers 405, with "
            "an Allow header naming the methods it serves. No string in a request (a value or a key, "
            "fields not described here included) may hold U+0000: such a request answers 400.",
        },
        "tags": [{"name": name} for name in (*TAGS.values(), "Operations")],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": responses_components,
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic", "description": "Account username and password"},
                "app": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "App <apiKey>",
                },
                "ibsso": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "IBSSO <token> (from POST /auth/1/session)",
                },
                "operator": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The operator token (OMNIRELAY_OPERATOR_TOKEN)",
                },
            },
        },
    }
    return msgspec.json.encode(out)
