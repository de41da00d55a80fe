"""The OpenAPI document, generated from the msgspec types (never written by hand)."""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from omnirelay import __version__
from omnirelay.http import types as t

# (method, path, summary, request type, response type, response status)
OPERATIONS: tuple[tuple[str, str, str, type | None, type | None, int], ...] = (
    (
        "post",
        "/facebook/1/single",
        "Send one Messenger message",
        t.FacebookSingleIn,
        t.FacebookSingleOut,
        200,
    ),
    (
        "get",
        "/facebook/1/reports",
        "Delivery reports of Messenger messages, each returned once",
        None,
        t.ReportsOut,
        200,
    ),
    ("post", "/auth/1/session", "Open an IBSSO session", t.SessionIn, t.SessionOut, 200),
    ("delete", "/auth/1/session", "Close the IBSSO session", None, None, 204),
)


@functools.cache
def document() -> bytes:
    types = [op[3] for op in OPERATIONS if op[3]] + [op[4] for op in OPERATIONS if op[4]] + [t.ApiErrorOut]
    schemas, components = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    refs = dict(zip(types, schemas, strict=True))
    error = {"content": {"application/json": {"schema": refs[t.ApiErrorOut]}}}
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, req, resp, status in OPERATIONS:
        op: dict[str, Any] = {"summary": summary, "security": [{"basic": []}, {"app": []}, {"ibsso": []}]}
        if req is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": refs[req]}}}
        ok: dict[str, Any] = {"description": "OK"}
        if resp is not None:
            ok["content"] = {"application/json": {"schema": refs[resp]}}
        op["responses"] = {
            str(status): ok,
            "400": {"description": "Bad request", **error},
            "401": {"description": "Unauthorized", **error},
            "500": {"description": "Server error", **error},
        }
        paths.setdefault(path, {})[method] = op
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "omnirelay", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "app": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "App <key>",
                },
                "ibsso": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "IBSSO <token>",
                },
            },
        },
    }
    return msgspec.json.encode(doc)


DOCS_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>omnirelay API</title>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="ui"></div>
<noscript>The OpenAPI document is at <a href="/openapi.json">/openapi.json</a>.</noscript>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script>
</body></html>
"""
