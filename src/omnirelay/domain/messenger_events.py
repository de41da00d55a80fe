"""What a Meta Messenger webhook tells us, as frozen values (no I/O, no JSON).

The channel adapter (`channels/messenger/webhook.py`) turns Meta's signed JSON into these events;
services act on them. Every event carries a `dedupe_key`, because Meta delivers at least once:
the `mid` for messages, echoes and postbacks that have one; `(psid, watermark)` for deliveries
and reads; otherwise a digest of the page id and the element's canonical JSON. Times are
timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple


class Attachment(NamedTuple):
    type: str  # image, audio, video, file, fallback, reel, sticker, …
    url: str | None


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """A person wrote to the Page (`messages`)."""

    page_id: str
    psid: str
    mid: str
    text: str | None
    attachments: tuple[Attachment, ...]
    timestamp: datetime
    dedupe_key: str
    quick_reply_payload: str | None = None


@dataclass(frozen=True, slots=True)
class EchoEvent:
    """A copy of what the Page sent (`message_echoes`); `metadata` is our message id."""

    page_id: str
    psid: str  # the recipient
    mid: str
    metadata: str | None
    timestamp: datetime
    dedupe_key: str


@dataclass(frozen=True, slots=True)
class DeliveryEvent:
    """Messages were delivered (`message_deliveries`): the `mids`, and everything up to `watermark`."""

    page_id: str
    psid: str
    mids: tuple[str, ...]
    watermark: datetime
    dedupe_key: str


@dataclass(frozen=True, slots=True)
class ReadEvent:
    """Everything sent up to `watermark` was read (`message_reads`)."""

    page_id: str
    psid: str
    watermark: datetime
    dedupe_key: str


@dataclass(frozen=True, slots=True)
class PostbackEvent:
    """A postback button, Get Started or persistent menu was tapped (`messaging_postbacks`)."""

    page_id: str
    psid: str
    mid: str | None
    title: str | None
    payload: str | None
    referral_ref: str | None
    timestamp: datetime
    dedupe_key: str


@dataclass(frozen=True, slots=True)
class OptinEvent:
    """An opt-in (`messaging_optins`); the checkbox plugin gives a `user_ref` and no PSID."""

    page_id: str
    psid: str | None
    user_ref: str | None
    ref: str | None
    timestamp: datetime
    dedupe_key: str
    optin_type: str | None = None
    notification_messages_token: str | None = None


@dataclass(frozen=True, slots=True)
class ReferralEvent:
    """A person with a thread came back through an m.me link, ad, QR code (`messaging_referrals`)."""

    page_id: str
    psid: str
    ref: str | None
    source: str | None
    timestamp: datetime
    dedupe_key: str


WebhookEvent = (
    MessageEvent | EchoEvent | DeliveryEvent | ReadEvent | PostbackEvent | OptinEvent | ReferralEvent
)

SKIPPABLE_KINDS = frozenset(
    {"message", "echo", "delivery", "read", "postback", "optin", "referral", "unknown"}
)


@dataclass(frozen=True, slots=True)
class SkippedEvent:
    """An element of a webhook that could not be used (e.g. a chat-plugin guest's, whose sender has
    a `user_ref` and no PSID); the rest of its batch is handled. `kind` is one of `SKIPPABLE_KINDS`."""

    page_id: str
    kind: str
    reason: str


@dataclass(frozen=True, slots=True)
class WebhookBatch:
    """What one webhook POST carried: the usable events in order, and what was skipped."""

    events: tuple[WebhookEvent, ...]
    skipped: tuple[SkippedEvent, ...] = ()
