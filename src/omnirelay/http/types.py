"""msgspec request and response types: decoding, validation, encoding and the OpenAPI schema."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct, field

from omnirelay.domain.statuses import Status
from omnirelay.services.reports import status_json

NonEmpty = Annotated[str, Meta(min_length=1)]


class StatusOut(Struct, frozen=True):
    groupId: int
    groupName: str
    id: int
    name: str
    description: str


_STATUS_OUT: dict[int, StatusOut] = {}


def status_out(status: Status) -> StatusOut:
    """The API's status object. Statuses are a fixed set, so each is built once and shared (a
    10,000-destination answer built 10,000 dicts and Structs of the same few statuses)."""
    out = _STATUS_OUT.get(status.id)
    if out is None:
        out = _STATUS_OUT[status.id] = StatusOut(**status_json(status))
    return out


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


# --- OMNI -----------------------------------------------------------------------------------

TimeUnit = Literal["NANOSECONDS", "MICROSECONDS", "MILLISECONDS", "SECONDS", "MINUTES", "HOURS", "DAYS"]


class StepIn(Struct):
    from_: str | None = field(name="from", default=None)
    channel: str | None = None


class ScenarioIn(Struct):
    name: str | None = None
    flow: list[StepIn] | None = None
    default: bool | None = None
    defaultScenario: bool | None = None


class StepOut(Struct):
    from_: str = field(name="from")
    channel: str


class ScenarioOut(Struct):
    key: str
    name: str
    flow: list[StepOut]
    default: bool


class ScenariosOut(Struct):
    scenarios: list[ScenarioOut]


class ToIn(Struct, omit_defaults=True):
    phoneNumber: str | None = None
    facebookUserKey: str | None = None
    emailAddress: str | None = None
    pushRegistrationId: str | None = None
    lineUserKey: str | None = None


class DestinationIn(Struct):
    to: ToIn
    messageId: Annotated[str, Meta(min_length=1, max_length=200)] | None = None


class SmsIn(Struct):
    text: str
    validityPeriod: int | str | None = None
    validityPeriodTimeUnit: TimeUnit | None = None
    transliteration: str | None = None
    language: dict[str, object] | None = None


class FacebookOmniIn(Struct):
    text: str | None = None
    type: Literal["TEXT", "IMAGE", "AUDIO", "VIDEO", "FILE"] | None = None
    url: str | None = None
    validityPeriod: int | str | None = None
    validityPeriodTimeUnit: TimeUnit | None = None


class OmniAdvancedIn(Struct):
    destinations: list[DestinationIn]
    scenarioKey: str | None = None
    bulkId: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    sms: SmsIn | None = None
    facebook: FacebookOmniIn | None = None
    # channels omnirelay does not serve: accepted and ignored
    voice: dict[str, object] | None = None
    viber: dict[str, object] | None = None
    email: dict[str, object] | None = None
    push: dict[str, object] | None = None
    line: dict[str, object] | None = None
    vKontakte: dict[str, object] | None = None
    parseco: dict[str, object] | None = None
    sendAt: str | None = None
    notifyUrl: str | None = None
    notifyContentType: str | None = None
    callbackData: Annotated[str, Meta(max_length=4000)] | None = None
    intermediateReport: bool = False
    notify: bool = True


class OmniTextIn(Struct):
    destinations: list[DestinationIn]
    text: str
    scenarioKey: str | None = None
    bulkId: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    mailSubject: str | None = None


class OmniMessageOut(Struct):
    to: ToIn
    status: StatusOut
    messageId: str


class OmniOut(Struct, omit_defaults=True):
    messages: list[OmniMessageOut]
    bulkId: str | None = None


# --- logs (`GET /omni/1/logs`, `GET /facebook/1/logs`) -------------------------------------


class LateDeliveryOut(Struct, omit_defaults=True):
    """A receipt for this step that came after the message had moved on (docs/api.md#failover)."""

    status: StatusOut
    doneAt: str | None = None


class AttemptOut(Struct, kw_only=True, omit_defaults=True):
    channel: str
    to: str
    status: StatusOut
    error: ErrorOut
    sentAt: str | None = None
    doneAt: str | None = None
    lateDelivery: LateDeliveryOut | None = None


class LogOut(Struct, kw_only=True, omit_defaults=True):
    """One message as the logs show it; `channel` on OMNI logs only."""

    bulkId: str | None = None
    messageId: str
    to: str
    from_: str = field(name="from")
    text: str | None = None
    sentAt: str
    doneAt: str | None = None
    messageCount: int
    price: PriceOut
    status: StatusOut
    channel: str | None = None
    attempts: list[AttemptOut]


class LogsOut(Struct):
    results: list[LogOut]


# --- operations ------------------------------------------------------------------------------


class HealthOut(Struct):
    status: Literal["ok"]


class ReadyOut(Struct):
    status: Literal["ready", "not ready"]
    checks: dict[str, bool]  # "storage", and "smpp:<connector>" per SMPP connector: bound
