"""Meta webhook handling: signature, verification challenge, and parsing into typed events.

Transport-free: the lead's HTTP route reads the raw body, calls `verify_signature` (403 when it is
False), then `parse_events` (400 on `WebhookPayloadError`), hands the events to a service, and
answers 200. Design choices:

* The signature is checked over the raw bytes before any parsing (docs/channels.md#webhook-signatures), with
  `hmac.compare_digest`. Only `X-Hub-Signature-256` is accepted, not the legacy SHA-1 header.
* Bodies are decoded by msgspec into private structs mirroring Meta's JSON (unknown fields
  ignored), then turned into frozen public events. Every `entry` and every `messaging` and
  `standby` element is read; elements of a kind we do not handle (reactions, edits, handover…)
  are ignored. A body that is not Meta-shaped (not an object with `object` and a list of `entry`
  each with an `id`) raises one `WebhookPayloadError`. One element that cannot be used (a chat
  plugin guest's, whose sender has a `user_ref` and no PSID; no `mid`; no timestamp) does not
  refuse its batch: it is a `SkippedEvent` of the `WebhookBatch`, and the other events are kept
  (a refused batch would come back from Meta, and fail the same way, until Meta gives up). A body
  whose `object` is not `"page"` (e.g. Instagram) yields no events.
* Times are tz-aware UTC datetimes. Meta sends epoch milliseconds; a few documented examples use
  seconds, so values below 10^11 are read as seconds (10^11 ms is 1973, 10^11 s is year 5138).
* Meta delivers at least once, so every event has a `dedupe_key`: the `mid` for messages, echoes
  and postbacks that have one; `(psid, watermark)` for deliveries and reads; otherwise a SHA-256
  of the page id and the element's canonical JSON.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime

import msgspec

from omnirelay.domain.errors import ValidationFailed
from omnirelay.domain.messenger_events import (
    Attachment,
    DeliveryEvent,
    EchoEvent,
    MessageEvent,
    OptinEvent,
    PostbackEvent,
    ReadEvent,
    ReferralEvent,
    SkippedEvent,
    WebhookBatch,
    WebhookEvent,
)

SIGNATURE_HEADER = "X-Hub-Signature-256"
_SIGNATURE_PREFIX = "sha256="


def verify_signature(app_secret: str, raw_body: bytes, header: str | None) -> bool:
    """True when `header` is `sha256=<hex HMAC-SHA256(app_secret, raw_body)>`."""
    if not header or not app_secret or not header.startswith(_SIGNATURE_PREFIX):
        return False
    try:
        given = header.removeprefix(_SIGNATURE_PREFIX).strip().lower().encode("ascii")
    except UnicodeEncodeError:
        return False
    expected = hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest().encode("ascii")
    return hmac.compare_digest(expected, given)


def verify_challenge(params: Mapping[str, str], verify_token: str) -> str | None:
    """The `hub.challenge` to answer with 200, or None (answer 403)."""
    if params.get("hub.mode") != "subscribe" or not verify_token:
        return None
    given = params.get("hub.verify_token", "")
    if not hmac.compare_digest(given.encode(), verify_token.encode()):
        return None
    return params.get("hub.challenge")


class WebhookPayloadError(ValueError):
    """The webhook body is not a Meta Messenger notification (answer 400)."""

    def __init__(self, *, problem: str) -> None:
        self.problem = problem
        super().__init__(problem)


class _Unusable(ValueError):
    """One element of a batch cannot be used; the batch goes on without it."""


# --- public events: the domain's (re-exported here for callers of this module) ----------------

__all__ = [
    "SIGNATURE_HEADER",
    "Attachment",
    "DeliveryEvent",
    "EchoEvent",
    "MessageEvent",
    "MetaWebhookCodec",
    "OptinEvent",
    "PostbackEvent",
    "ReadEvent",
    "ReferralEvent",
    "SkippedEvent",
    "WebhookBatch",
    "WebhookEvent",
    "WebhookPayloadError",
    "parse_events",
    "parse_webhook",
    "verify_challenge",
    "verify_signature",
]


# --- Meta's JSON --------------------------------------------------------------------------------


class _Party(msgspec.Struct):
    id: str | None = None
    user_ref: str | None = None


class _AttachmentPayload(msgspec.Struct):
    url: str | None = None


class _Attachment(msgspec.Struct):
    type: str
    payload: _AttachmentPayload | None = None


class _QuickReply(msgspec.Struct):
    payload: str | None = None


class _Message(msgspec.Struct):
    mid: str
    text: str | None = None
    attachments: list[_Attachment] = []
    quick_reply: _QuickReply | None = None
    is_echo: bool = False
    metadata: str | None = None


class _Delivery(msgspec.Struct):
    watermark: int
    mids: list[str] | None = None


class _Read(msgspec.Struct):
    watermark: int


class _Referral(msgspec.Struct):
    ref: str | None = None
    source: str | None = None


class _Postback(msgspec.Struct):
    mid: str | None = None
    title: str | None = None
    payload: str | None = None
    referral: _Referral | None = None


class _Optin(msgspec.Struct):
    ref: str | None = None
    user_ref: str | None = None
    type: str | None = None
    notification_messages_token: str | None = None


class _Messaging(msgspec.Struct):
    sender: _Party | None = None
    recipient: _Party | None = None
    timestamp: int | None = None
    message: _Message | None = None
    delivery: _Delivery | None = None
    read: _Read | None = None
    postback: _Postback | None = None
    optin: _Optin | None = None
    referral: _Referral | None = None


class _Entry(msgspec.Struct):
    id: str  # required: without it the body is not Meta's
    time: int | None = None
    messaging: list[msgspec.Raw] = []
    standby: list[msgspec.Raw] = []


class _Body(msgspec.Struct):
    object: str
    entry: list[_Entry]


_decode_body = msgspec.json.Decoder(_Body).decode
_decode_messaging = msgspec.json.Decoder(_Messaging).decode


def _time(value: int) -> datetime:
    seconds = value / 1000 if value >= 10**11 else float(value)
    return datetime.fromtimestamp(seconds, tz=UTC)


def _digest(page_id: str, raw: msgspec.Raw) -> str:
    canonical = msgspec.json.encode(msgspec.json.decode(raw), order="sorted")
    return "sha256:" + hashlib.sha256(page_id.encode() + b"\x00" + canonical).hexdigest()


def parse_webhook(raw_body: bytes) -> WebhookBatch:
    """The usable events of a webhook POST body, in order, and the elements skipped; raises
    `WebhookPayloadError` if the body itself is not Meta's."""
    try:
        body = _decode_body(raw_body)
    except msgspec.DecodeError as exc:  # ValidationError included
        raise WebhookPayloadError(problem=f"malformed webhook body: {exc}") from exc
    if body.object != "page":
        return WebhookBatch(())
    events: list[WebhookEvent] = []
    skipped: list[SkippedEvent] = []
    for entry in body.entry:
        for raw in (*entry.messaging, *entry.standby):
            try:
                item = _decode_messaging(raw)
            except msgspec.DecodeError as exc:
                skipped.append(SkippedEvent(entry.id, "unknown", f"malformed element: {exc}"))
                continue
            try:
                event = _event(entry, item, raw)
            except _Unusable as exc:
                skipped.append(SkippedEvent(entry.id, _kind(item), str(exc)))
                continue
            if event is not None:
                events.append(event)
    return WebhookBatch(tuple(events), tuple(skipped))


def parse_events(raw_body: bytes) -> tuple[WebhookEvent, ...]:
    """The usable events of a webhook POST body (`parse_webhook` without what was skipped)."""
    return parse_webhook(raw_body).events


def _kind(item: _Messaging) -> str:
    if item.message is not None:
        return "echo" if item.message.is_echo else "message"
    for kind in ("delivery", "read", "postback", "optin", "referral"):
        if getattr(item, kind) is not None:
            return kind
    return "unknown"


def _psid(party: _Party | None, role: str) -> str:
    if party is None or not party.id:
        if party is not None and party.user_ref:
            raise _Unusable(f"{role} has a user_ref and no id (a chat plugin guest): no PSID to use")
        raise _Unusable(f"event without {role}.id")
    return party.id


def _event(entry: _Entry, item: _Messaging, raw: msgspec.Raw) -> WebhookEvent | None:
    page_id = entry.id
    stamp = item.timestamp if item.timestamp is not None else entry.time
    if item.delivery is not None:
        psid = _psid(item.sender, "sender")
        watermark = item.delivery.watermark
        return DeliveryEvent(
            page_id, psid, tuple(item.delivery.mids or ()), _time(watermark), f"delivery:{psid}:{watermark}"
        )
    if item.read is not None:
        psid = _psid(item.sender, "sender")
        watermark = item.read.watermark
        return ReadEvent(page_id, psid, _time(watermark), f"read:{psid}:{watermark}")
    if stamp is None:
        raise _Unusable("event without timestamp")
    timestamp = _time(stamp)
    message = item.message
    if message is not None:
        if message.is_echo:
            return EchoEvent(
                page_id,
                _psid(item.recipient, "recipient"),
                message.mid,
                message.metadata,
                timestamp,
                message.mid,
            )
        attachments = tuple(
            Attachment(a.type, a.payload.url if a.payload else None) for a in message.attachments
        )
        return MessageEvent(
            page_id,
            _psid(item.sender, "sender"),
            message.mid,
            message.text,
            attachments,
            timestamp,
            message.mid,
            quick_reply_payload=message.quick_reply.payload if message.quick_reply else None,
        )
    if item.postback is not None:
        postback = item.postback
        return PostbackEvent(
            page_id,
            _psid(item.sender, "sender"),
            postback.mid,
            postback.title,
            postback.payload,
            postback.referral.ref if postback.referral else None,
            timestamp,
            postback.mid or _digest(page_id, raw),
        )
    if item.optin is not None:
        optin = item.optin
        sender = item.sender
        return OptinEvent(
            page_id,
            sender.id if sender else None,
            optin.user_ref or (sender.user_ref if sender else None),
            optin.ref,
            timestamp,
            _digest(page_id, raw),
            optin_type=optin.type,
            notification_messages_token=optin.notification_messages_token,
        )
    if item.referral is not None:
        return ReferralEvent(
            page_id,
            _psid(item.sender, "sender"),
            item.referral.ref,
            item.referral.source,
            timestamp,
            _digest(page_id, raw),
        )
    return None


class MetaWebhookCodec:
    """The `MessengerWebhookCodec` port: Meta's signature, verification challenge and JSON."""

    def verify_signature(self, app_secret: str, raw_body: bytes, header: str | None) -> bool:
        return verify_signature(app_secret, raw_body, header)

    def verify_challenge(self, params: Mapping[str, str], verify_token: str) -> str | None:
        return verify_challenge(params, verify_token)

    def parse(self, raw_body: bytes) -> WebhookBatch:
        """The events of a body and what was skipped; a body that is not Meta-shaped is a
        `ValidationFailed` (400)."""
        try:
            return parse_webhook(raw_body)
        except WebhookPayloadError as exc:
            raise ValidationFailed(field="body", problem=exc.problem) from exc
