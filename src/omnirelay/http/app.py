"""The Starlette application: routes are thin (parse, call a service, render)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from omnirelay.domain.errors import OmnirelayError, ValidationFailed
from omnirelay.http import admin, docs, errors, facebook, logs, messenger, omni, openapi, sends
from omnirelay.http import console as console_pages
from omnirelay.http.body import decode
from omnirelay.http.context import Services, json_response, services
from omnirelay.http.types import HealthOut, ReadyOut, SessionIn, SessionOut

Lifespan = Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]
Endpoint = Callable[[Request], Awaitable[Response]]
# (route template, method) -> count(HTTP status); bound once per route, so an answer costs one call
RequestCounter = Callable[[str, str], Callable[[int], None]]


async def health(_request: Request) -> Response:
    return json_response(HealthOut(status="ok"))


async def ready(request: Request) -> Response:
    checks = await services(request).ready()
    ok = all(checks.values())
    return json_response(ReadyOut(status="ready" if ok else "not ready", checks=checks), 200 if ok else 503)


async def metrics(request: Request) -> Response:
    return Response(await services(request).metrics(), media_type=openapi.METRICS_MEDIA)


async def open_session(request: Request) -> Response:
    body = await decode(request, SessionIn, services(request).max_body_bytes)
    token = await services(request).auth.open_session(body.username, body.password)
    return json_response(SessionOut(token=token))


async def close_session(request: Request) -> Response:
    await services(request).auth.close_session(request.headers.get("authorization"))
    return Response(status_code=204)


async def openapi_json(request: Request) -> Response:
    doc: bytes | None = getattr(request.app.state, "openapi", None)
    if doc is None:
        doc = request.app.state.openapi = openapi.document(request.app.routes)
    return Response(doc, media_type="application/json")


def counted(endpoint: Endpoint, count: Callable[[int], None]) -> Endpoint:
    """The endpoint, counting its answers; errors count with the status their handler gives them."""

    @functools.wraps(endpoint)
    async def handler(request: Request) -> Response:
        try:
            response = await endpoint(request)
        except Exception as exc:
            count(errors.status_of(exc))
            raise
        count(response.status_code)
        return response

    return handler


def _method(route: Route) -> str:
    return next((m for m in sorted(route.methods or ()) if m != "HEAD"), "GET")


def counted_handler(
    handler: Callable[[Request, Exception], Awaitable[Response]], count: Callable[[int], None]
) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def counting(request: Request, exc: Exception) -> Response:
        response = await handler(request, exc)
        count(response.status_code)
        return response

    return counting


# The send routes, served as plain ASGI before the Starlette stack (see `sends`)
SENDS: dict[str, sends.Core] = {
    "/facebook/1/single": facebook.single,
    "/omni/1/advanced": omni.send_advanced,
    "/omni/1/text": omni.send_text,
}


class App(Starlette):
    """Starlette, with `POST` on the send routes taken first by `sends.serve`."""

    def __init__(self, *args: Any, count_requests: RequestCounter | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sends = {
            path: sends.Route(core, count_requests(path, "POST") if count_requests is not None else None)
            for path, core in SENDS.items()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and ("\x00" in scope["path"] or b"%00" in scope["query_string"]):
            # PostgreSQL's text cannot hold U+0000: refused before any route (docs/decisions/0008)
            where = "path" if "\x00" in scope["path"] else "query"
            refused = ValidationFailed(field=where, problem="must not contain %00 (NUL)")
            await sends.send_answer(send, errors.answer(refused))
            return
        if scope["type"] == "http" and scope["method"] == "POST":
            found = self._sends.get(scope["path"])
            svc: Services | None = self.state.services
            if found is not None and svc is not None:
                await sends.serve(svc, found, scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(
    svc: Services | None, lifespan: Lifespan | None = None, count_requests: RequestCounter | None = None
) -> App:
    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        *docs.routes(),
        Route("/auth/1/session", open_session, methods=["POST"]),
        Route("/auth/1/session", close_session, methods=["DELETE"]),
        *facebook.routes(),
        *messenger.routes(),
        *omni.routes(),
        *logs.routes(),
        *admin.routes(),
    ]
    http_exception: Callable[[Request, Exception], Awaitable[Response]] = errors.handle_http_exception
    if count_requests is not None:
        routes = [
            Route(
                r.path,
                counted(r.endpoint, count_requests(r.path, _method(r))),
                methods=list(r.methods or ()),
            )
            for r in routes
        ]
        # 404 for unknown paths and 405 for wrong methods come from the router, not a route
        http_exception = counted_handler(errors.handle_http_exception, count_requests("unmatched", "ANY"))

    # HTML, not part of the API: mounted after the routes the document describes and counts
    all_routes: list[BaseRoute] = [*routes, console_pages.mount()]

    @contextlib.asynccontextmanager
    async def no_lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield

    app = App(
        count_requests=count_requests,
        routes=all_routes,
        lifespan=lifespan or no_lifespan,
        exception_handlers={
            OmnirelayError: errors.handle_omnirelay_error,
            HTTPException: http_exception,
            Exception: errors.handle_unexpected,
        },
    )
    app.state.services = svc
    return app
