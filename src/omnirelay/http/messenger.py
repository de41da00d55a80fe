"""Messenger management routes (applications, users) and Meta's webhook
(docs/api.md#messenger-applications-and-users, docs/api.md#meta-webhook)."""

from __future__ import annotations

from msgspec import UnsetType
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from omnirelay.domain.errors import ValidationFailed
from omnirelay.http.body import decode, read_body
from omnirelay.http.context import account, int_param, json_response, services
from omnirelay.http.messenger_types import ApplicationIn, ApplicationOut, ApplicationsOut, UserIn, UserOut
from omnirelay.ports import MessengerApplication, MessengerUser
from omnirelay.services.messenger_inbound import MessengerInbound
from omnirelay.services.messenger_users import (
    KEEP,
    ApplicationChange,
    Keep,
    MessengerApplications,
    callback_path,
)

SIGNATURE_HEADER = "x-hub-signature-256"


def _apps(request: Request) -> MessengerApplications:
    svc = services(request).messenger
    if svc is None:
        raise RuntimeError("Messenger management is not wired")
    return svc


def _inbound(request: Request) -> MessengerInbound:
    svc = services(request).messenger_inbound
    if svc is None:
        raise RuntimeError("the Messenger webhook is not wired")
    return svc


def _keep(value: str | UnsetType | None) -> str | Keep | None:
    return KEEP if isinstance(value, UnsetType) else value


def change_from(body: ApplicationIn) -> ApplicationChange:
    return ApplicationChange(
        name=_keep(body.name),
        page_id=_keep(body.pageId),
        page_access_token=_keep(body.pageAccessToken),
        app_secret=_keep(body.appSecret),
        verify_token=_keep(body.verifyToken),
        webhook_url=_keep(body.webhookUrl),
    )


def application_out(app: MessengerApplication) -> ApplicationOut:
    # pageAccessToken and appSecret are write-only: never rendered.
    return ApplicationOut(
        key=app.key,
        name=app.name,
        pageId=app.page_id,
        verifyToken=app.verify_token,
        webhookUrl=app.webhook_url,
        callbackUrl=callback_path(app.key),
    )


def user_out(user: MessengerUser) -> UserOut:
    return UserOut(key=user.user_key, integrationType="FACEBOOK", phoneNumber=user.phone_number)


async def create_application(request: Request) -> Response:
    account_id = await account(request)
    svc = services(request)
    body = await decode(request, ApplicationIn, svc.max_body_bytes)
    return json_response(application_out(await _apps(request).create(account_id, change_from(body))))


async def list_applications(request: Request) -> Response:
    account_id = await account(request)
    apps = await _apps(request).applications(account_id)
    return json_response(ApplicationsOut([application_out(a) for a in apps]))


async def get_application(request: Request) -> Response:
    account_id = await account(request)
    app = await _apps(request).get(account_id, request.path_params["key"])
    return json_response(application_out(app))


async def update_application(request: Request) -> Response:
    account_id = await account(request)
    svc = services(request)
    body = await decode(request, ApplicationIn, svc.max_body_bytes)
    app = await _apps(request).update(account_id, request.path_params["key"], change_from(body))
    return json_response(application_out(app))


async def delete_application(request: Request) -> Response:
    account_id = await account(request)
    await _apps(request).delete(account_id, request.path_params["key"])
    return Response(status_code=204)


async def list_users(request: Request) -> Response:
    account_id = await account(request)
    users = await _apps(request).users(
        account_id,
        request.path_params["key"],
        int_param(request, "limit", 100, 1, 1000),
        int_param(request, "offset", 0, 0, 1_000_000_000),
    )
    return json_response([user_out(u) for u in users])


async def get_user(request: Request) -> Response:
    account_id = await account(request)
    p = request.path_params
    return json_response(user_out(await _apps(request).user(account_id, p["key"], p["userKey"])))


async def update_user(request: Request) -> Response:
    account_id = await account(request)
    svc = services(request)
    body = await decode(request, UserIn, svc.max_body_bytes)
    if isinstance(body.phoneNumber, UnsetType):
        raise ValidationFailed(field="phoneNumber", problem="is required (null removes it)")
    p = request.path_params
    user = await _apps(request).set_phone(account_id, p["key"], p["userKey"], body.phoneNumber)
    return json_response(user_out(user))


async def delete_user(request: Request) -> Response:
    account_id = await account(request)
    p = request.path_params
    await _apps(request).delete_user(account_id, p["key"], p["userKey"])
    return Response(status_code=204)


async def verify_webhook(request: Request) -> Response:
    challenge = await _inbound(request).challenge(
        request.path_params["applicationKey"], dict(request.query_params)
    )
    return PlainTextResponse(challenge)


async def receive_webhook(request: Request) -> Response:
    svc = services(request)
    raw = await read_body(request, svc.max_body_bytes)
    await _inbound(request).receive(
        request.path_params["applicationKey"], raw, request.headers.get(SIGNATURE_HEADER)
    )
    return PlainTextResponse("EVENT_RECEIVED")


def routes() -> list[Route]:
    apps = "/facebook/1/applications"
    return [
        Route(apps, create_application, methods=["POST"]),
        Route(apps, list_applications, methods=["GET"]),
        Route(apps + "/{key}", get_application, methods=["GET"]),
        Route(apps + "/{key}", update_application, methods=["PUT"]),
        Route(apps + "/{key}", delete_application, methods=["DELETE"]),
        Route(apps + "/{key}/users", list_users, methods=["GET"]),
        Route(apps + "/{key}/users/{userKey}", get_user, methods=["GET"]),
        Route(apps + "/{key}/users/{userKey}", update_user, methods=["PUT"]),
        Route(apps + "/{key}/users/{userKey}", delete_user, methods=["DELETE"]),
        Route("/webhooks/facebook/{applicationKey}", verify_webhook, methods=["GET"]),
        Route("/webhooks/facebook/{applicationKey}", receive_webhook, methods=["POST"]),
    ]
