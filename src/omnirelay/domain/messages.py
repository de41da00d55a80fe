"""Messages, destinations, steps and contents: frozen value objects, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from omnirelay.domain.errors import ValidationFailed
from omnirelay.domain.statuses import ErrorCode, Status


class Channel(StrEnum):
    """Channels omnirelay sends on."""

    FACEBOOK = "FACEBOOK"
    SMS = "SMS"


# Every OMNI channel name clients may write (docs/api.md#scenarios); steps on channels outside
# `Channel` are refused with a 400, their content objects accepted and ignored.
OMNI_CHANNEL_NAMES = frozenset(
    {"SMS", "VOICE", "VIBER", "FACEBOOK", "EMAIL", "PUSH", "VK", "VKONTAKTE", "WHATSAPP", "LINE", "PARSECO"}
)


class SuccessCriterion(StrEnum):
    """What ends a scenario step successfully (docs/api.md#success-criteria); short of it, the step
    waits until its validity ends and then fails over."""

    ACCEPTED = "ACCEPTED"  # the channel took the message (SMPP submit_sm_resp, Graph's 200)
    DELIVERED = "DELIVERED"  # a delivery receipt (the default: the behaviour before criteria)
    SEEN = "SEEN"  # a read receipt (Messenger `message_reads`); a read counts as delivered too


# Channels that report reads: SEEN on any other is refused when the scenario is written.
READ_RECEIPT_CHANNELS = frozenset({Channel.FACEBOOK})


@dataclass(frozen=True, slots=True)
class Step:
    channel: Channel
    sender: str  # the step's `from`: application key for FACEBOOK, sender id for SMS
    criterion: SuccessCriterion = SuccessCriterion.DELIVERED


@dataclass(frozen=True, slots=True)
class Address:
    """A destination's `to` object: the addresses each channel may use."""

    phone_number: str | None = None
    facebook_user_key: str | None = None


class AddressKind(StrEnum):
    PHONE = "PHONE"
    USER_KEY = "USER_KEY"


class FacebookKind(StrEnum):
    TEXT = "TEXT"
    IMAGE = "IMAGE"
    AUDIO = "AUDIO"
    VIDEO = "VIDEO"
    FILE = "FILE"
    TEMPLATE = "TEMPLATE"
    SENDER_ACTION = "SENDER_ACTION"


MEDIA_KINDS = frozenset({FacebookKind.IMAGE, FacebookKind.AUDIO, FacebookKind.VIDEO, FacebookKind.FILE})


class ButtonKind(StrEnum):
    POSTBACK = "POSTBACK"
    URL = "URL"


class SenderAction(StrEnum):
    MARK_SEEN = "MARK_SEEN"
    TYPING_ON = "TYPING_ON"
    TYPING_OFF = "TYPING_OFF"


class MessagingType(StrEnum):
    """Meta's `messaging_type` of a Send API message."""

    RESPONSE = "RESPONSE"  # a reply inside the 24-hour window
    UPDATE = "UPDATE"  # proactive, inside the window (the default)
    MESSAGE_TAG = "MESSAGE_TAG"  # outside the window, with a `MessageTag`


class MessageTag(StrEnum):
    """Meta's current message tags (non-promotional updates outside the 24-hour window). Meta's
    CUSTOMER_FEEDBACK tag is for its customer feedback template, which omnirelay does not send."""

    CONFIRMED_EVENT_UPDATE = "CONFIRMED_EVENT_UPDATE"
    POST_PURCHASE_UPDATE = "POST_PURCHASE_UPDATE"
    ACCOUNT_UPDATE = "ACCOUNT_UPDATE"
    HUMAN_AGENT = "HUMAN_AGENT"  # a person's reply up to 7 days after the user's message


@dataclass(frozen=True, slots=True)
class Button:
    kind: ButtonKind
    title: str
    payload: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class FacebookContent:
    kind: FacebookKind
    text: str | None = None  # TEXT, and the TEMPLATE's text
    url: str | None = None  # media
    buttons: tuple[Button, ...] = ()  # TEMPLATE
    sender_action: SenderAction | None = None  # SENDER_ACTION
    messaging_type: MessagingType = MessagingType.UPDATE  # messages only, not sender actions
    tag: MessageTag | None = None  # with MESSAGE_TAG only


@dataclass(frozen=True, slots=True)
class SmsContent:
    text: str


Content = FacebookContent | SmsContent


@dataclass(frozen=True, slots=True)
class Outbound:
    """One attempt of one step, as handed to a channel sender."""

    message_id: str  # the gateway's message id (Messenger `metadata`, logs)
    account_id: int
    channel: Channel
    sender: str
    to: str  # the address this step uses: user key or phone digits (no '+')
    to_kind: AddressKind
    content: Content
    expires_at: datetime  # end of the step's validity period (SMPP validity_period)
    # a sender that cannot report it for this address refuses the send (docs/api.md#success-criteria)
    criterion: SuccessCriterion = SuccessCriterion.DELIVERED


@dataclass(frozen=True, slots=True)
class Receipt:
    """A channel's word on a message it accepted: delivered, or failed after acceptance.
    `seen`: a read receipt (Messenger `message_reads`), which says delivered as well.

    `ref` is the id the channel gave at acceptance (Graph `message_id`, SMSC `message_id` scoped
    by its connector). `sent_after`: the adapter knows the ref was handed out for a send it made at
    that time, so the receipt is not for an earlier send that got the same ref (SMSC ids repeat).
    """

    channel: Channel
    ref: str
    status: Status
    error: ErrorCode
    done_at: datetime
    detail: dict[str, str] = field(default_factory=dict)
    sent_after: datetime | None = None
    seen: bool = False


# --- validation of Facebook content (docs/api.md#messenger-message-types) ----------------------------

TEMPLATE_TEXT_LIMIT = 320
BUTTON_TITLE_LIMIT = 20
POSTBACK_PAYLOAD_LIMIT = 1000


def _absolute_http_url(url: str | None) -> bool:
    if not url:
        return False
    scheme, sep, rest = url.partition("://")
    return bool(sep) and scheme.lower() in ("http", "https") and bool(rest.split("/")[0])


def check_facebook_content(content: FacebookContent, prefix: str) -> None:
    """Raise `ValidationFailed` naming the first field that breaks the rules of its type."""
    kind = content.kind
    if content.messaging_type is MessagingType.MESSAGE_TAG and content.tag is None:
        raise ValidationFailed(field=f"{prefix}.tag", problem="is required when messagingType is MESSAGE_TAG")
    if content.tag is not None and content.messaging_type is not MessagingType.MESSAGE_TAG:
        raise ValidationFailed(
            field=f"{prefix}.tag", problem="is allowed only when messagingType is MESSAGE_TAG"
        )
    if kind is FacebookKind.TEXT and not content.text:
        raise ValidationFailed(field=f"{prefix}.text", problem="must not be empty for type TEXT")
    if kind in MEDIA_KINDS and not _absolute_http_url(content.url):
        raise ValidationFailed(field=f"{prefix}.url", problem="must be an absolute http(s) URL for media")
    if kind is FacebookKind.SENDER_ACTION and content.sender_action is None:
        raise ValidationFailed(field=f"{prefix}.senderAction", problem="is required for type SENDER_ACTION")
    if kind is FacebookKind.TEMPLATE:
        if not content.text:
            raise ValidationFailed(field=f"{prefix}.payload.text", problem="must not be empty")
        if len(content.text) > TEMPLATE_TEXT_LIMIT:
            raise ValidationFailed(
                field=f"{prefix}.payload.text", problem=f"must be at most {TEMPLATE_TEXT_LIMIT} characters"
            )
        if not 1 <= len(content.buttons) <= 3:
            raise ValidationFailed(field=f"{prefix}.payload.buttons", problem="must hold 1 to 3 buttons")
        for i, button in enumerate(content.buttons):
            where = f"{prefix}.payload.buttons[{i}]"
            if not button.title or len(button.title) > BUTTON_TITLE_LIMIT:
                raise ValidationFailed(
                    field=f"{where}.title", problem=f"must be 1 to {BUTTON_TITLE_LIMIT} characters"
                )
            if button.kind is ButtonKind.POSTBACK and (
                not button.payload or len(button.payload) > POSTBACK_PAYLOAD_LIMIT
            ):
                raise ValidationFailed(
                    field=f"{where}.payload", problem=f"must be 1 to {POSTBACK_PAYLOAD_LIMIT} characters"
                )
            if button.kind is ButtonKind.URL and not button.url:
                raise ValidationFailed(field=f"{where}.url", problem="is required for URL buttons")
