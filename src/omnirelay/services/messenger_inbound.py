"""The Meta webhook: verification, registrations, inbound forwarding and delivery receipts
(docs/api.md#meta-webhook).

`receive` does everything durably before the route answers 200, so Meta's retry covers a crash:

* messages, postbacks, opt-ins and referrals register the person (one user key per application
  and PSID) and queue the forwards to the application's `webhookUrl`
  (docs/api.md#forwarded-inbound-messages), with
  the event's dedupe key, in one transaction; a retried event changes nothing;
* deliveries (by `mids`, else by `watermark`) and reads (`watermark`) become
  DELIVERED_TO_HANDSET receipts, reads with `seen` (what a SEEN step waits for; a read says
  delivered as well), for the `ReceiptSink`, which stores them and matches them to sends
  later (also when the receipt comes first); the event key is recorded after the receipts, so a
  crash in between repeats receipts (harmless) rather than losing them;
* echoes are logged with our message id (`metadata`);
* an element that cannot be used (a chat plugin guest's, without a PSID) is logged and counted
  (`Metrics.webhook_skipped`), and the rest of its batch is handled: one such element must not
  make Meta retry, and finally drop, the whole batch.

The forwarding outbox is posted by `Forwarder` (services/forwarding.py), not here.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec

from omnirelay.domain.errors import Forbidden, NotFound
from omnirelay.domain.messages import Channel, Receipt
from omnirelay.domain.messenger_events import (
    DeliveryEvent,
    EchoEvent,
    MessageEvent,
    OptinEvent,
    PostbackEvent,
    ReadEvent,
    ReferralEvent,
    WebhookEvent,
)
from omnirelay.domain.statuses import DELIVERED_TO_HANDSET, NO_ERROR
from omnirelay.domain.times import format_time
from omnirelay.ports import (
    NO_METRICS,
    Clock,
    InboundStore,
    MessengerApplication,
    MessengerDirectory,
    MessengerUser,
    MessengerWebhookCodec,
    Metrics,
    NewForward,
    ReceiptSink,
    Registration,
)

log = logging.getLogger(__name__)

# Meta attachment type -> forwarded message type; other types with a URL are forwarded as FILE.
MEDIA_TYPES = {
    "image": "IMAGE",
    "sticker": "IMAGE",
    "audio": "AUDIO",
    "video": "VIDEO",
    "reel": "VIDEO",
    "file": "FILE",
}
_DEDUPE_KEY_LIMIT = 200
_encode = msgspec.json.Encoder().encode

Result = dict[str, Any]


def forward_body(
    application_key: str, user_key: str, received_at: datetime, messages: Sequence[Result]
) -> bytes:
    """The body POSTed to `webhookUrl` (docs/api.md#forwarded-inbound-messages): one result per forwarded
    message."""
    results = [
        {
            "from": user_key,
            "to": application_key,
            "receivedAt": format_time(received_at),
            "message": message,
            "price": {"pricePerMessage": 0, "currency": "EUR"},
        }
        for message in messages
    ]
    return _encode({"results": results, "messageCount": len(results), "pendingMessageCount": 0})


def message_contents(event: MessageEvent) -> list[Result]:
    out: list[Result] = []
    if event.text:
        out.append({"type": "TEXT", "text": event.text})
    for attachment in event.attachments:
        kind = MEDIA_TYPES.get(attachment.type)
        if attachment.url is None:
            log.info("inbound %s attachment without url not forwarded", attachment.type)
            continue
        out.append({"type": kind or "FILE", "url": attachment.url})
    return out


class MessengerInbound:
    def __init__(
        self,
        directory: MessengerDirectory,
        store: InboundStore,
        codec: MessengerWebhookCodec,
        receipts: ReceiptSink,
        clock: Clock,
        *,
        on_forward: Callable[[], None] = lambda: None,
        on_echo: Callable[[int, str, str], Awaitable[object]] | None = None,
        watermark_slack_s: float = 2.0,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._metrics = metrics
        self._directory = directory
        self._store = store
        self._codec = codec
        self._receipts = receipts
        self._clock = clock
        self._on_forward = on_forward
        self._on_echo = on_echo  # (account id, message id, mid): reconciles sends whose answer was lost
        # Our attempt's sent_at is taken after Graph answered, so it is later than Meta's own
        # timestamp of the same message by up to a round trip: allow for that.
        self._slack = timedelta(seconds=watermark_slack_s)

    async def _application(self, key: str) -> MessengerApplication:
        app = await self._directory.application(key)
        if app is None:
            raise NotFound("Application not found")
        return app

    async def challenge(self, application_key: str, params: Mapping[str, str]) -> str:
        """Meta's subscription check: the `hub.challenge` to answer, else `Forbidden`."""
        app = await self._application(application_key)
        answer = self._codec.verify_challenge(params, app.verify_token)
        if answer is None:
            log.warning("Messenger webhook verification for application %s refused", app.key)
            raise Forbidden("Webhook verification failed")
        log.info("Messenger webhook verified for application %s", app.key)
        return answer

    async def receive(self, application_key: str, raw_body: bytes, signature: str | None) -> int:
        """Verify, parse and durably handle one webhook POST; the number of events handled."""
        app = await self._application(application_key)
        if not self._codec.verify_signature(app.app_secret, raw_body, signature):
            log.warning("Messenger webhook for application %s refused: invalid signature", app.key)
            raise Forbidden("Invalid X-Hub-Signature-256")
        handled = 0
        queued = False
        batch = self._codec.parse(raw_body)
        for skipped in batch.skipped:
            log.warning(
                "Messenger webhook element skipped for application %s: page %s, %s: %s",
                app.key,
                skipped.page_id,
                skipped.kind,
                skipped.reason,
            )
            self._metrics.webhook_skipped(skipped.kind)
        for event in batch.events:
            if event.page_id != app.page_id:
                log.warning(
                    "Messenger event for page %s ignored: application %s is page %s",
                    event.page_id,
                    app.key,
                    app.page_id,
                )
                continue
            queued = await self._handle(app, event) or queued
            handled += 1
        if queued:
            self._on_forward()
        return handled

    async def _handle(self, app: MessengerApplication, event: WebhookEvent) -> bool:
        """True when forwards were queued."""
        if isinstance(event, MessageEvent):
            return await self._register(app, event.psid, event, message_contents(event))
        if isinstance(event, PostbackEvent):
            contents: list[Result] = [{"type": "POSTBACK", "payload": event.payload or ""}]
            return await self._register(app, event.psid, event, contents, ref=event.referral_ref)
        if isinstance(event, OptinEvent):
            if event.psid is None:
                # Checkbox plugin: no PSID until the person answers; nothing to register yet.
                log.info("Messenger opt-in with user_ref only for application %s; no user yet", app.key)
                return False
            return await self._register(app, event.psid, event, [], ref=event.ref)
        if isinstance(event, ReferralEvent):
            return await self._register(app, event.psid, event, [], ref=event.ref)
        if isinstance(event, DeliveryEvent):
            await self._delivered(app, event.psid, event.dedupe_key, event.mids, event.watermark)
            return False
        if isinstance(event, ReadEvent):
            await self._delivered(app, event.psid, event.dedupe_key, (), event.watermark, seen=True)
            return False
        if isinstance(event, EchoEvent):
            self._echo(app, event)
            if event.metadata and self._on_echo is not None:
                await self._on_echo(app.account_id, event.metadata, event.mid)
        return False

    @staticmethod
    def _dedupe_key(app: MessengerApplication, key: str) -> str:
        scoped = f"{app.key}:{key}"
        if len(scoped) > _DEDUPE_KEY_LIMIT:
            scoped = "sha256:" + hashlib.sha256(scoped.encode()).hexdigest()
        return scoped

    async def _register(
        self,
        app: MessengerApplication,
        psid: str,
        event: MessageEvent | PostbackEvent | OptinEvent | ReferralEvent,
        contents: list[Result],
        *,
        ref: str | None = None,
    ) -> bool:
        candidate = MessengerUser(user_key=str(uuid.uuid4()), application_key=app.key, psid=psid)
        url = app.webhook_url

        def forwards(registration: Registration) -> list[NewForward]:
            messages = list(contents)
            if registration.is_new:
                registration_message: Result = {"type": "REGISTRATION"}
                if ref:
                    registration_message["ref"] = ref
                messages.insert(0, registration_message)
            if url is None or not messages:
                return []
            body = forward_body(app.key, registration.user.user_key, event.timestamp, messages)
            return [NewForward(url, body)]

        done = await self._store.accept_inbound(
            self._dedupe_key(app, event.dedupe_key), candidate, self._clock.now(), forwards
        )
        if done is None:
            log.info("duplicate Messenger event %s for application %s ignored", event.dedupe_key, app.key)
            return False
        if done.is_new:
            log.info("Messenger user %s registered in application %s", done.user.user_key, app.key)
        if url is None:
            log.info(
                "application %s has no webhookUrl: inbound %s not forwarded", app.key, type(event).__name__
            )
            return False
        return bool(contents) or done.is_new

    async def _delivered(
        self,
        app: MessengerApplication,
        psid: str,
        dedupe_key: str,
        mids: Sequence[str],
        watermark: datetime,
        *,
        seen: bool = False,
    ) -> None:
        key = self._dedupe_key(app, dedupe_key)
        if await self._store.seen(key):
            log.info("duplicate Messenger receipt event %s ignored", dedupe_key)
            return
        refs = list(mids) or await self._watermark_refs(app, psid, watermark, seen)
        if refs:
            await self._receipts.record(
                [
                    Receipt(Channel.FACEBOOK, ref, DELIVERED_TO_HANDSET, NO_ERROR, watermark, seen=seen)
                    for ref in refs
                ]
            )
        await self._store.mark_seen(key, app.key, self._clock.now())

    async def _watermark_refs(
        self, app: MessengerApplication, psid: str, watermark: datetime, seen: bool
    ) -> list[str]:
        """What a watermark covers: the person's steps still waiting, and those that expired unread
        (a late read or delivery: docs/api.md#late-outcomes)."""
        user = await self._store.user_by_psid(app.key, psid)
        if user is None:
            return []
        addresses = [user.user_key] + ([user.phone_number] if user.phone_number else [])
        until = watermark + self._slack
        refs = await self._store.waiting_refs(app.key, addresses, until)
        late = await self._store.expired_refs(app.key, addresses, until, read=seen)
        if refs or late:
            log.info(
                "Messenger watermark for user %s covers %d waiting and %d expired message(s)",
                user.user_key,
                len(refs),
                len(late),
            )
        return refs + late

    @staticmethod
    def _echo(app: MessengerApplication, event: EchoEvent) -> None:
        # Reconciling a send whose Graph response was lost is `on_echo`'s job (services/echoes.py).
        if event.metadata:
            log.info(
                "Messenger echo: application %s sent %s",
                app.key,
                event.mid,
                extra={"message_id": event.metadata},
            )
        else:
            log.info("Messenger echo without metadata (not sent by omnirelay): %s", event.mid)
