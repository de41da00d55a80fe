"""The Starlette application: routes are thin (parse, call a service, render)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from omnirelay.domain.errors import OmnirelayError
from omnirelay.http import admin, errors, facebook, logs, messenger, omni, openapi
from omnirelay.http.body import decode
from omnirelay.http.context import Services, json_response, services
from omnirelay.http.types import SessionIn, SessionOut

Lifespan = Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]


async def health(_request: Request) -> Response:
    return json_response({"status": "ok"})


async def ready(request: Request) -> Response:
    checks = await services(request).ready()
    ok = all(checks.values())
    return json_response({"status": "ready" if ok else "not ready", "checks": checks}, 200 if ok else 503)


async def metrics(request: Request) -> Response:
    return Response(services(request).metrics(), media_type="text/plain; version=0.0.4")


async def open_session(request: Request) -> Response:
    body = await decode(request, SessionIn, services(request).max_body_bytes)
    token = await services(request).auth.open_session(body.username, body.password)
    return json_response(SessionOut(token=token))


async def close_session(request: Request) -> Response:
    await services(request).auth.close_session(request.headers.get("authorization"))
    return Response(status_code=204)


async def openapi_json(_request: Request) -> Response:
    return Response(openapi.document(), media_type="application/json")


async def docs(_request: Request) -> Response:
    return HTMLResponse(openapi.DOCS_HTML)


def create_app(svc: Services | None, lifespan: Lifespan | None = None) -> Starlette:
    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        Route("/auth/1/session", open_session, methods=["POST"]),
        Route("/auth/1/session", close_session, methods=["DELETE"]),
        *facebook.routes(),
        *messenger.routes(),
        *omni.routes(),
        *logs.routes(),
        *admin.routes(),
    ]

    @contextlib.asynccontextmanager
    async def no_lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield

    app = Starlette(
        routes=routes,
        lifespan=lifespan or no_lifespan,
        exception_handlers={
            OmnirelayError: errors.handle_omnirelay_error,
            HTTPException: errors.handle_http_exception,
            Exception: errors.handle_unexpected,
        },
    )
    app.state.services = svc
    return app
