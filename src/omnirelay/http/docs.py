"""`/docs`: Swagger UI over `/openapi.json`, its assets served by the gateway itself.

A self-hosted gateway often has no internet access, where a page loading Swagger UI from a CDN
stays empty. The assets are swagger-ui-dist 5.35.0 from npm (Apache-2.0; static/swagger-ui/LICENSE
and NOTICE), unmodified: `swagger-ui-bundle.js` and `swagger-ui.css` only
(docs/decisions/0009-newcomer-and-packaging.md says why vendored, and how to update them).
"""

from __future__ import annotations

import functools
from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

SWAGGER_UI_VERSION = "5.35.0"
BUNDLE = "/docs/swagger-ui-bundle.js"
STYLESHEET = "/docs/swagger-ui.css"

PAGE = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>omnirelay API</title>
<link rel="stylesheet" href="{STYLESHEET}?v={SWAGGER_UI_VERSION}"></head>
<body><div id="ui"></div>
<noscript>The OpenAPI document is at <a href="/openapi.json">/openapi.json</a>.</noscript>
<script src="{BUNDLE}?v={SWAGGER_UI_VERSION}"></script>
<script>SwaggerUIBundle({{url: "/openapi.json", dom_id: "#ui"}});</script>
</body></html>
"""


@functools.cache
def asset(name: str) -> bytes:
    return (resources.files("omnirelay.http") / "static" / "swagger-ui" / name).read_bytes()


def _cached(body: bytes, media_type: str) -> Response:
    # The URLs carry the version: a browser may keep them for a day.
    return Response(body, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})


async def page(_request: Request) -> Response:
    return HTMLResponse(PAGE)


async def bundle(_request: Request) -> Response:
    return _cached(asset("swagger-ui-bundle.js"), "text/javascript; charset=utf-8")


async def stylesheet(_request: Request) -> Response:
    return _cached(asset("swagger-ui.css"), "text/css; charset=utf-8")


def routes() -> list[Route]:
    return [
        Route("/docs", page, methods=["GET"]),
        Route(BUNDLE, bundle, methods=["GET"]),
        Route(STYLESHEET, stylesheet, methods=["GET"]),
    ]
