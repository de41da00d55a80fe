"""`POST /facebook/1/single`: one Messenger message as a one-step flow (docs/api.md#facebook-single-send)."""

from __future__ import annotations

import dataclasses
import re

import msgspec

from omnirelay.domain import failover
from omnirelay.domain.failover import MAX_VALIDITY_S, PlannedStep
from omnirelay.domain.ids import uuid7
from omnirelay.domain.messages import AddressKind, Channel, FacebookContent, FacebookKind
from omnirelay.domain.statuses import (
    EC_UNKNOWN_APPLICATION,
    EC_UNKNOWN_USER,
    NO_ERROR,
    PENDING_ACCEPTED,
    REJECTED_DESTINATION_NOT_REGISTERED,
    REJECTED_SOURCE,
    ErrorCode,
    Status,
)
from omnirelay.domain.times import to_ms
from omnirelay.ports import (
    NO_METRICS,
    Api,
    Clock,
    IdempotentSend,
    MessageStore,
    MessengerDirectory,
    Metrics,
    NewMessage,
)
from omnirelay.services import reports
from omnirelay.services.intake import Notify, counted

TEXT_LIMIT = 640
_PHONE = re.compile(r"^\+?[0-9]{5,20}$")


class SingleResult(msgspec.Struct, frozen=True):
    to: str
    status: Status
    message_id: str
    message_count: int = 1


class FacebookSingle:
    def __init__(
        self,
        store: MessageStore,
        directory: MessengerDirectory,
        clock: Clock,
        notify: Notify,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._directory = directory
        self._clock = clock
        self._notify = notify

    async def send(
        self,
        account_id: int,
        sender: str,
        to: str,
        content: FacebookContent,
        keyed: IdempotentSend[SingleResult] | None = None,
    ) -> SingleResult:
        if content.kind is FacebookKind.TEXT and content.text is not None and len(content.text) > TEXT_LIMIT:
            content = dataclasses.replace(content, text=content.text[:TEXT_LIMIT])
        now = self._clock.now()
        message_id = uuid7(to_ms(now))
        rejection: tuple[Status, ErrorCode] | None = None
        app = await self._directory.application(sender)
        kind = AddressKind.USER_KEY
        address = to
        if app is None or app.account_id != account_id:
            rejection = (REJECTED_SOURCE, EC_UNKNOWN_APPLICATION)
        elif await self._directory.user(sender, to) is None:
            if _PHONE.match(to):
                kind, address = AddressKind.PHONE, to.lstrip("+")
            else:
                rejection = (REJECTED_DESTINATION_NOT_REGISTERED, EC_UNKNOWN_USER)
        step = PlannedStep(Channel.FACEBOOK, sender, address, kind, MAX_VALIDITY_S, facebook=content)
        plan = (step,)
        state = failover.start(plan, now)
        final = None
        status, error = PENDING_ACCEPTED, NO_ERROR
        if rejection is not None:
            status, error = rejection
            state = failover.FlowState(0, failover.Phase.DONE, 0, now, None)
            final = reports.RejectedAtAcceptance(
                api=Api.FACEBOOK,
                bulk_id=None,
                channel=Channel.FACEBOOK.value,
                now=now,
                callback_data=None,
                notify_url=None,
            ).report(message_id, to, status, error)
        message = NewMessage(
            account_id=account_id,
            message_id=message_id,
            bulk_id=None,
            api=Api.FACEBOOK,
            to={"to": to},
            plan=plan,
            state=state,
            status=status,
            error=error,
            created_at=now,
            text=content.text,
            final_report=final,
        )
        result = SingleResult(to=to, status=status, message_id=message_id)  # one message: no duplicate id
        inserted = await self._store.insert_messages(
            [message], keyed.claim(lambda _: result) if keyed is not None else None
        )
        counted(self._metrics, [message], inserted)
        if final is None:
            self._notify()
        return result
