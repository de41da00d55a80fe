"""msgspec request and response types: decoding, validation, encoding and the OpenAPI schema."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct, field

NonEmpty = Annotated[str, Meta(min_length=1)]


class StatusOut(Struct):
    groupId: int
    groupName: str
    id: int
    name: str
    description: str


class ButtonIn(Struct):
    type: Literal["POSTBACK", "URL"]
    title: str
    payload: str | None = None
    url: str | None = None


class TemplatePayloadIn(Struct):
    type: Literal["BUTTON"]
    text: str
    buttons: list[ButtonIn]


class FacebookMessageIn(Struct):
    type: Literal["TEXT", "IMAGE", "AUDIO", "VIDEO", "FILE", "TEMPLATE", "SENDER_ACTION"]
    text: str | None = None
    url: str | None = None
    payload: TemplatePayloadIn | None = None
    senderAction: Literal["MARK_SEEN", "TYPING_ON", "TYPING_OFF"] | None = None


class FacebookSingleIn(Struct):
    from_: NonEmpty = field(name="from")
    to: NonEmpty
    message: FacebookMessageIn


class FacebookSingleOut(Struct):
    to: str
    status: StatusOut
    messageCount: int
    messageId: str


class SessionIn(Struct):
    username: str
    password: str


class SessionOut(Struct):
    token: str


class PriceOut(Struct):
    pricePerMessage: float
    currency: str


class ErrorOut(Struct):
    groupId: int
    groupName: str
    id: int
    name: str
    description: str
    permanent: bool


class ReportOut(Struct, omit_defaults=True):
    messageId: str
    to: str
    sentAt: str
    doneAt: str
    messageCount: int
    price: PriceOut
    status: StatusOut
    error: ErrorOut
    bulkId: str | None = None
    channel: str | None = None
    callbackData: str | None = None


class ReportsOut(Struct):
    results: list[ReportOut]


class ServiceExceptionOut(Struct, omit_defaults=True):
    messageId: str
    text: str
    validationErrors: dict[str, list[str]] | None = None


class RequestErrorOut(Struct):
    serviceException: ServiceExceptionOut


class ApiErrorOut(Struct):
    requestError: RequestErrorOut


encoder = msgspec.json.Encoder()
