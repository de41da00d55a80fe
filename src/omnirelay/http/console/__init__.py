"""The web console at `/console` (docs/console.md): server-rendered pages, a little script and a
stylesheet bundled in the package (static/console/), nothing fetched from elsewhere.

Mounted apart from the API's routes: it is HTML, not part of the OpenAPI document.
"""

from __future__ import annotations

import functools
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from omnirelay.http.console import channels, config, messages, overview, signin
from omnirelay.http.console.html import SECURITY_HEADERS

ASSETS = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}


@functools.cache
def _asset(name: str) -> bytes:
    return (resources.files("omnirelay.http") / "static" / "console" / name).read_bytes()


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    media = ASSETS.get(name)
    if media is None:
        return Response("Not found", 404, media_type="text/plain")
    headers = {**SECURITY_HEADERS, "Cache-Control": "public, max-age=86400"}  # URLs carry a version
    return Response(_asset(name), media_type=media, headers=headers)


def mount() -> Mount:
    return Mount(
        "/console",
        routes=[
            Route("/", signin.home, methods=["GET"]),
            Route("/login", signin.login_page, methods=["GET"]),
            Route("/login", signin.login, methods=["POST"]),
            Route("/logout", signin.logout, methods=["POST"]),
            Route("/overview", signin.guarded(overview.overview_page), methods=["GET"]),
            Route("/overview.json", signin.guarded(overview.overview_data), methods=["GET"]),
            Route("/messages", signin.guarded(messages.messages_page), methods=["GET"]),
            Route("/messages/{pk:int}", signin.guarded(messages.journey_page), methods=["GET"]),
            Route("/channels", signin.guarded(channels.channels_page), methods=["GET"]),
            Route("/config", signin.guarded(config.config_page), methods=["GET"]),
            Route("/static/{name}", asset, methods=["GET"]),
        ],
    )
