"""msgspec request and response types: decoding, validation, encoding and the OpenAPI schema."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct, field

from omnirelay.domain.messages import (
    BUTTON_TITLE_LIMIT,
    POSTBACK_PAYLOAD_LIMIT,
    TEMPLATE_TEXT_LIMIT,
)
from omnirelay.domain.scenarios import MAX_NAME, MAX_SENDER, MAX_STEPS
from omnirelay.domain.statuses import Status
from omnirelay.http import patterns
from omnirelay.services.omni import MAX_DESTINATIONS
from omnirelay.services.reports import status_json

# An address or sender: the `messages` and `attempts` columns hold 200 characters
NonEmpty = Annotated[str, Meta(min_length=1, max_length=200)]
Address = Annotated[str, Meta(max_length=200)]


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


# The rules of Facebook content that depend on another field (domain.messages.check_facebook_content
# enforces them; docs/api.md#messenger-message-types), stated in the document as JSON Schema
# conditions; a template's payload is checked for type TEMPLATE only. They are documentation only:
# decoding stays with the types below, so that a broken rule answers with the field's name in the
# API's error format.
def _when(
    field: str, values: Sequence[str | None], then: Mapping[str, object], *, absent: bool = False
) -> dict[str, object]:
    """`then` applies when `field` holds one of `values` (or, with `absent`, is left out)."""
    condition: dict[str, object] = {"properties": {field: {"enum": values}}}
    if not absent:
        condition["required"] = [field]
    return {"if": condition, "then": then}


def _needs(field: str, schema: Mapping[str, object]) -> dict[str, object]:
    return {"required": [field], "properties": {field: schema}}


_NON_EMPTY = {"type": "string", "minLength": 1}
_ABSOLUTE_URL = {"type": "string", "pattern": patterns.ABSOLUTE_URL}
_MEDIA = ["IMAGE", "AUDIO", "VIDEO", "FILE"]
_TAG_RULES = [
    _when("messagingType", ["MESSAGE_TAG"], _needs("tag", {"type": "string"})),
    {"if": _needs("tag", {"type": "string"}), "then": _needs("messagingType", {"const": "MESSAGE_TAG"})},
]
_BUTTON_RULES = [
    {"properties": {"title": {**_NON_EMPTY, "maxLength": BUTTON_TITLE_LIMIT}}},
    _when("type", ["POSTBACK"], _needs("payload", {**_NON_EMPTY, "maxLength": POSTBACK_PAYLOAD_LIMIT})),
    _when("type", ["URL"], _needs("url", _NON_EMPTY)),
]
_PAYLOAD_RULES = {
    "type": "object",
    "properties": {
        "text": {**_NON_EMPTY, "maxLength": TEMPLATE_TEXT_LIMIT},
        "buttons": {"minItems": 1, "maxItems": 3, "items": {"allOf": _BUTTON_RULES}},
    },
}
_FACEBOOK_MESSAGE_RULES = Meta(
    extra_json_schema={
        "allOf": [
            _when("type", ["TEXT"], _needs("text", _NON_EMPTY)),
            _when("type", _MEDIA, _needs("url", _ABSOLUTE_URL)),
            _when("type", ["SENDER_ACTION"], _needs("senderAction", {"type": "string"})),
            _when("type", ["TEMPLATE"], _needs("payload", _PAYLOAD_RULES)),
            *_TAG_RULES,
        ]
    }
)
_FACEBOOK_OMNI_RULES = Meta(
    extra_json_schema={
        "allOf": [
            _when("type", ["TEXT", None], _needs("text", _NON_EMPTY), absent=True),
            _when("type", _MEDIA, _needs("url", _ABSOLUTE_URL)),
            *_TAG_RULES,
        ]
    }
)


class ButtonIn(Struct):
    type: Literal["POSTBACK", "URL"]
    title: str
    payload: str | None = None
    url: str | None = None


class TemplatePayloadIn(Struct):
    type: Literal["BUTTON"]
    text: str
    buttons: list[ButtonIn]


# omnirelay extension fields of the Facebook payloads (Infobip has none): Meta's messaging_type and tag.
MessagingTypeIn = Annotated[
    Literal["RESPONSE", "UPDATE", "MESSAGE_TAG"],
    Meta(
        description="omnirelay extension: Meta's messaging_type. UPDATE (the default) sends inside the "
        "24-hour window; RESPONSE replies to the person's message; MESSAGE_TAG sends a non-promotional "
        "update outside the window and needs `tag`. Ignored for SENDER_ACTION."
    ),
]
MessageTagIn = Annotated[
    Literal["CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "ACCOUNT_UPDATE", "HUMAN_AGENT"],
    Meta(
        description="omnirelay extension: Meta's message tag, required with messagingType MESSAGE_TAG "
        "and allowed only with it. HUMAN_AGENT: a person's reply up to 7 days after the user's message."
    ),
]


class FacebookMessageIn(Struct):
    type: Literal["TEXT", "IMAGE", "AUDIO", "VIDEO", "FILE", "TEMPLATE", "SENDER_ACTION"]
    text: str | None = None
    url: str | None = None
    payload: TemplatePayloadIn | None = None
    senderAction: Literal["MARK_SEEN", "TYPING_ON", "TYPING_OFF"] | None = None
    messagingType: MessagingTypeIn | None = None
    tag: MessageTagIn | None = None


class FacebookSingleIn(Struct):
    from_: NonEmpty = field(name="from")
    to: NonEmpty
    message: Annotated[FacebookMessageIn, _FACEBOOK_MESSAGE_RULES]


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


Criterion = Literal["ACCEPTED", "DELIVERED", "SEEN"]  # domain.messages.SuccessCriterion


# SEEN needs a channel that reports reads (domain.scenarios.check_flow)
_STEP_RULES = Meta(
    extra_json_schema=_when(
        "channel", ["SMS"], {"properties": {"successCriterion": {"enum": ["ACCEPTED", "DELIVERED"]}}}
    )
)


class StepIn(Struct):
    from_: Annotated[str, Meta(max_length=MAX_SENDER)] | None = field(name="from", default=None)
    channel: str | None = None
    successCriterion: Criterion | None = None  # SEEN on SMS: domain.scenarios.check_flow


class ScenarioIn(Struct):
    name: Annotated[str, Meta(max_length=MAX_NAME)] | None = None
    flow: Annotated[list[Annotated[StepIn, _STEP_RULES]], Meta(min_length=1, max_length=MAX_STEPS)] | None = (
        None
    )
    default: bool | None = None
    defaultScenario: bool | None = None


# What POST /omni/1/scenarios requires, as its OpenAPI schema shows it; ScenarioIn decodes the body
# (shared with PUT, where every field is optional) so that what is missing gets the API's 400.
class ScenarioStepCreate(Struct):
    from_: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=MAX_SENDER,
            description="SMS: the sender (alphanumeric or a number); FACEBOOK: the key of one of the "
            "account's Facebook applications",
        ),
    ] = field(name="from")
    channel: Annotated[Literal["FACEBOOK", "SMS"], Meta(description="the channel of this step")]
    successCriterion: Annotated[
        Criterion,
        Meta(
            description="omnirelay extension: what makes this step succeed; short of it the step "
            "waits until its validity ends, then the next step is tried. ACCEPTED: the channel took "
            "the message; DELIVERED: a delivery receipt; SEEN: a read receipt (FACEBOOK only: SMS "
            "reports no reads, and SEEN on SMS is refused)"
        ),
    ] = "DELIVERED"


class ScenarioCreate(Struct):
    name: Annotated[str, Meta(max_length=MAX_NAME, pattern=patterns.NON_BLANK)]
    flow: Annotated[
        list[Annotated[ScenarioStepCreate, _STEP_RULES]],
        Meta(
            min_length=1,
            max_length=MAX_STEPS,
            extra_json_schema={"uniqueItems": True},
            description="the channels in order: each step is tried when the one before fails; "
            f"at most {MAX_STEPS}, none twice (the same channel and from, whatever its successCriterion)",
        ),
    ]
    default: Annotated[
        bool, Meta(description="the account's default scenario: the one a send without scenarioKey uses")
    ] = False


class StepOut(Struct, omit_defaults=True):
    from_: str = field(name="from")
    channel: str
    # shown when not the default: a scenario without criteria answers as Infobip's does
    successCriterion: Criterion = "DELIVERED"


class ScenarioOut(Struct):
    key: str
    name: str
    flow: list[StepOut]
    default: bool


class ScenariosOut(Struct):
    scenarios: list[ScenarioOut]


class ToIn(Struct, omit_defaults=True):
    phoneNumber: Address | None = None
    facebookUserKey: Address | None = None
    emailAddress: Address | None = None
    pushRegistrationId: Address | None = None
    lineUserKey: Address | None = None


class DestinationIn(Struct):
    to: ToIn
    messageId: Annotated[str, Meta(min_length=1, max_length=200)] | None = None


# A positive number, or a string of one (http/omni.py `validity_s`: float() of it, finite, > 0).
ValidityPeriod = Annotated[
    int | str | None,
    Meta(
        extra_json_schema={
            "anyOf": [
                {"type": "integer", "exclusiveMinimum": 0},
                {
                    "type": "string",
                    "pattern": patterns.POSITIVE_NUMBER,
                },
                {"type": "null"},
            ],
            "description": "A positive amount of validityPeriodTimeUnit (MINUTES when left out)",
        }
    ),
]


class SmsIn(Struct):
    text: str
    validityPeriod: ValidityPeriod = None
    validityPeriodTimeUnit: TimeUnit | None = None
    transliteration: str | None = None
    language: dict[str, object] | None = None


class FacebookOmniIn(Struct):
    text: str | None = None
    type: Literal["TEXT", "IMAGE", "AUDIO", "VIDEO", "FILE"] | None = None
    url: str | None = None
    validityPeriod: ValidityPeriod = None
    validityPeriodTimeUnit: TimeUnit | None = None
    messagingType: MessagingTypeIn | None = None
    tag: MessageTagIn | None = None


Destinations = Annotated[
    list[DestinationIn],
    Meta(min_length=1, max_length=MAX_DESTINATIONS, description="One message each; at most 10,000"),
]


class OmniAdvancedIn(Struct):
    destinations: Destinations
    scenarioKey: str | None = None
    bulkId: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    sms: SmsIn | None = None
    facebook: Annotated[FacebookOmniIn | None, _FACEBOOK_OMNI_RULES] = None
    # channels omnirelay does not serve: accepted and ignored
    voice: dict[str, object] | None = None
    viber: dict[str, object] | None = None
    email: dict[str, object] | None = None
    push: dict[str, object] | None = None
    line: dict[str, object] | None = None
    vKontakte: dict[str, object] | None = None
    parseco: dict[str, object] | None = None
    sendAt: (
        Annotated[
            str,
            Meta(
                extra_json_schema={"pattern": patterns.TIME},
                description="When to send, with its offset (2016-12-24T09:00:00.000+0100); at most 180 "
                "days ahead",
            ),
        ]
        | None
    ) = None
    notifyUrl: (
        Annotated[
            str,
            Meta(
                max_length=2000,
                extra_json_schema={"pattern": patterns.ABSOLUTE_URL},
                description="Where final reports are pushed: an absolute http(s) URL with a valid host",
            ),
        ]
        | None
    ) = None
    notifyContentType: Annotated[str | None, Meta(extra_json_schema={"enum": ["application/json", None]})] = (
        None
    )
    callbackData: Annotated[str, Meta(max_length=4000)] | None = None
    intermediateReport: bool = False
    notify: bool = True


class OmniTextIn(Struct):
    destinations: Destinations
    text: Annotated[str, Meta(extra_json_schema={"minLength": 1})]
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
    # omnirelay extensions (docs/api.md#success-criteria); the criterion always written
    successCriterion: Criterion | None = None
    deliveredAt: Annotated[
        str | None, Meta(description="a delivery that did not meet a SEEN criterion: the step kept waiting")
    ] = None
    seenAt: Annotated[str | None, Meta(description="when a read receipt came for this step")] = None


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


class FailedOut(Struct):
    rejected: Annotated[int, Meta(description="refused by the channel before it was sent")]
    failureReceipt: Annotated[int, Meta(description="a failure receipt after the channel took it")]
    expired: Annotated[int, Meta(description="its validity ended before its success criterion was met")]


class FunnelStepOut(Struct):
    step: Annotated[int, Meta(description="the step's index in the message's plan, from 0")]
    channel: str
    sent: Annotated[int, Meta(description="the channel took it")]
    met: Annotated[int, Meta(description="it met its success criterion")]
    failed: Annotated[
        FailedOut,
        Meta(description="it failed, by reason: the message failed over to its next step, or ended"),
    ]
    lateSuccess: Annotated[int, Meta(description="a delivery or read came after it had failed over")]


class FunnelScenarioOut(Struct):
    scenarioKey: Annotated[
        str | None, Meta(description="null: messages accepted before scenarios were recorded")
    ]
    steps: list[FunnelStepOut]


class AnalyticsOut(Struct):
    since: str
    until: str
    scenarios: list[FunnelScenarioOut]
