"""Facebook Messenger routes: `POST /facebook/1/single` and its reports."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from omnirelay.domain.errors import ValidationFailed
from omnirelay.domain.messages import (
    Button,
    ButtonKind,
    FacebookContent,
    FacebookKind,
    MessageTag,
    MessagingType,
    SenderAction,
    check_facebook_content,
)
from omnirelay.http.body import decode_raw
from omnirelay.http.context import Services, pull_reports
from omnirelay.http.sends import via_starlette
from omnirelay.http.types import FacebookMessageIn, FacebookSingleIn, FacebookSingleOut, encoder, status_out
from omnirelay.ports import Api, IdempotentRequest, IdempotentSend
from omnirelay.services.facebook import SingleResult


def content_from(message: FacebookMessageIn, prefix: str) -> FacebookContent:
    kind = FacebookKind(message.type)
    text = message.text
    buttons: tuple[Button, ...] = ()
    if kind is FacebookKind.TEMPLATE:
        if message.payload is None:
            raise ValidationFailed(field=f"{prefix}.payload", problem="is required for type TEMPLATE")
        text = message.payload.text
        buttons = tuple(
            Button(ButtonKind(b.type), b.title, b.payload, b.url) for b in message.payload.buttons
        )
    content = FacebookContent(
        kind=kind,
        text=text,
        url=message.url,
        buttons=buttons,
        sender_action=SenderAction(message.senderAction) if message.senderAction else None,
        messaging_type=MessagingType(message.messagingType or MessagingType.UPDATE),
        tag=MessageTag(message.tag) if message.tag else None,
    )
    check_facebook_content(content, prefix)
    return content


def render(result: SingleResult) -> bytes:
    return encoder.encode(
        FacebookSingleOut(
            to=result.to,
            status=status_out(result.status),
            messageCount=result.message_count,
            messageId=result.message_id,
        )
    )


async def single(svc: Services, account_id: int, raw: bytes, idem: IdempotentRequest | None) -> bytes:
    """`POST /facebook/1/single` once authenticated (served by `sends`)."""
    body = decode_raw(raw, FacebookSingleIn)
    content = content_from(body.message, "message")
    keyed = IdempotentSend(idem, render) if idem is not None else None
    return render(await svc.facebook.send(account_id, body.from_, body.to, content, keyed))


async def send_single(request: Request) -> Response:
    return await via_starlette(request, single)


async def reports(request: Request) -> Response:
    return await pull_reports(request, Api.FACEBOOK)


def routes() -> list[Route]:
    return [
        Route("/facebook/1/single", send_single, methods=["POST"]),
        Route("/facebook/1/reports", reports, methods=["GET"]),
    ]
