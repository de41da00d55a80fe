"""Messages, destinations, steps and contents: frozen value objects, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from omnirelay.domain.statuses import ErrorCode, Status


class Channel(StrEnum):
    """Channels omnirelay sends on."""

    FACEBOOK = "FACEBOOK"
    SMS = "SMS"


# Every OMNI channel name clients may write (SPEC Part 2 §2.1); steps on channels outside
# `Channel` are refused with a 400, their content objects accepted and ignored.
OMNI_CHANNEL_NAMES = frozenset(
    {"SMS", "VOICE", "VIBER", "FACEBOOK", "EMAIL", "PUSH", "VK", "VKONTAKTE", "WHATSAPP", "LINE", "PARSECO"}
)


@dataclass(frozen=True, slots=True)
class Step:
    channel: Channel
    sender: str  # the step's `from`: application key for FACEBOOK, sender id for SMS


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


@dataclass(frozen=True, slots=True)
class Receipt:
    """A channel's word on a message it accepted: delivered, or failed after acceptance.

    `ref` is the id the channel gave at acceptance (Graph `message_id`, SMSC `message_id`).
    """

    channel: Channel
    ref: str
    status: Status
    error: ErrorCode
    done_at: datetime
    detail: dict[str, str] = field(default_factory=dict)
