"""`POST /omni/1/advanced` and `/omni/1/text`: one message per destination through a scenario.

Each destination's plan is the scenario's steps that apply to it (docs/api.md#failover): FACEBOOK needs a user
key or a phone number and Facebook content; SMS needs a phone number and SMS content. Rejected
destinations answer with a REJECTED status in the 200 and still get their one final report.
Everything the request accepts is committed in one transaction before the answer.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec

from omnirelay.domain import failover, phones
from omnirelay.domain.errors import ValidationFailed
from omnirelay.domain.failover import MAX_VALIDITY_S, FlowState, Phase, PlannedStep
from omnirelay.domain.ids import uuid7
from omnirelay.domain.messages import AddressKind, Channel, FacebookContent, SmsContent
from omnirelay.domain.statuses import (
    EC_INVALID_DESTINATION_ADDRESS,
    MESSAGE_ACCEPTED,
    MISSING_TO,
    NO_ERROR,
    REJECTED_DESTINATION,
    REJECTED_DUPLICATE_MESSAGE_ID,
    ErrorCode,
    Status,
)
from omnirelay.domain.times import to_ms
from omnirelay.ports import NO_METRICS, Api, Clock, IdempotentSend, MessageStore, Metrics, NewMessage
from omnirelay.services import reports
from omnirelay.services.intake import Notify, counted
from omnirelay.services.scenarios import Scenarios

MAX_SCHEDULE = timedelta(days=180)
# Destinations of one request (docs/decisions/0008-input-limits.md): a request is one transaction of
# the group commit, so its size bounds how long it holds up every other sender.
MAX_DESTINATIONS = 10_000


class OmniDestination(msgspec.Struct, frozen=True):
    to: dict[str, Any]  # echoed as sent
    phone_number: str | None = None
    facebook_user_key: str | None = None
    message_id: str | None = None


class OmniRequest(msgspec.Struct, frozen=True):
    destinations: tuple[OmniDestination, ...]
    scenario_key: str | None = None
    bulk_id: str | None = None
    facebook: FacebookContent | None = None
    facebook_validity_s: int = MAX_VALIDITY_S
    sms: SmsContent | None = None
    sms_validity_s: int = MAX_VALIDITY_S
    send_at: datetime | None = None
    notify_url: str | None = None
    callback_data: str | None = None
    intermediate_report: bool = False
    notify: bool = True


class OmniMessageResult(msgspec.Struct, frozen=True):
    to: dict[str, Any]
    status: Status
    message_id: str


class OmniResult(msgspec.Struct, frozen=True):
    bulk_id: str | None
    messages: list[OmniMessageResult] = msgspec.field(default_factory=list)


class OmniSend:
    def __init__(
        self,
        store: MessageStore,
        scenarios: Scenarios,
        clock: Clock,
        notify: Notify,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._scenarios = scenarios
        self._clock = clock
        self._notify = notify

    async def send(
        self, account_id: int, request: OmniRequest, keyed: IdempotentSend[OmniResult] | None = None
    ) -> OmniResult:
        if not request.destinations:
            raise ValidationFailed(field="destinations", problem="must not be empty")
        if len(request.destinations) > MAX_DESTINATIONS:
            raise ValidationFailed(field="destinations", problem=f"must hold at most {MAX_DESTINATIONS:,}")
        scenario = await self._scenarios.resolve(account_id, request.scenario_key)
        now = self._clock.now()
        if request.send_at is not None and request.send_at - now > MAX_SCHEDULE:
            raise ValidationFailed(field="sendAt", problem="must be less than 180 days ahead")
        now_ms = to_ms(now)
        bulk_id = request.bulk_id or (uuid7(now_ms) if len(request.destinations) > 1 else None)
        text = request.sms.text if request.sms else request.facebook.text if request.facebook else None
        messages: list[NewMessage] = []
        # A new message's state depends on its first step's validity only, and is immutable: the
        # destinations share one per validity (building it was ~10 % of a 10,000-destination request).
        starts: dict[int, FlowState] = {}
        rejected = reports.RejectedAtAcceptance(
            api=Api.OMNI,
            bulk_id=bulk_id,
            channel=scenario.flow[0].channel.value,
            now=now,
            callback_data=request.callback_data,
            notify_url=request.notify_url if request.notify else None,
        )
        for dest in request.destinations:
            plan, problem = self._plan(scenario.flow, dest, request)
            message_id = dest.message_id or uuid7(now_ms)
            status, error = (MESSAGE_ACCEPTED, NO_ERROR) if problem is None else problem
            final = None
            if problem is None:
                state = starts.get(plan[0].validity_s)
                if state is None:
                    state = starts[plan[0].validity_s] = failover.start(plan, now, request.send_at)
            else:
                state = FlowState(0, Phase.DONE, 0, now, None)
                shown = dest.phone_number or dest.facebook_user_key or ""
                final = rejected.report(message_id, shown, status, error)
                if not plan:
                    plan = (
                        PlannedStep(
                            scenario.flow[0].channel,
                            scenario.flow[0].sender,
                            shown,
                            AddressKind.PHONE,
                            MAX_VALIDITY_S,
                        ),
                    )
            messages.append(
                NewMessage(
                    account_id=account_id,
                    message_id=message_id,
                    bulk_id=bulk_id,
                    api=Api.OMNI,
                    to=dest.to,
                    plan=plan,
                    state=state,
                    status=status,
                    error=error,
                    created_at=now,
                    text=text,
                    notify_url=request.notify_url,
                    callback_data=request.callback_data,
                    intermediate_report=request.intermediate_report,
                    notify=request.notify,
                    client_message_id=dest.message_id is not None,
                    final_report=final,
                    scenario_key=scenario.key,
                )
            )

        def result_of(inserted: list[bool]) -> OmniResult:
            return OmniResult(
                bulk_id,
                [
                    OmniMessageResult(m.to, m.status if ok else REJECTED_DUPLICATE_MESSAGE_ID, m.message_id)
                    for m, ok in zip(messages, inserted, strict=True)
                ],
            )

        inserted = await self._store.insert_messages(
            messages, keyed.claim(result_of) if keyed is not None else None
        )
        self._notify()
        counted(self._metrics, messages, inserted)
        return result_of(inserted)

    @staticmethod
    def _plan(
        flow: tuple[Any, ...], dest: OmniDestination, request: OmniRequest
    ) -> tuple[tuple[PlannedStep, ...], tuple[Status, ErrorCode] | None]:
        phone = None
        if dest.phone_number is not None:
            phone = phones.normalise(dest.phone_number)
            if phone is None:
                return (), (REJECTED_DESTINATION, EC_INVALID_DESTINATION_ADDRESS)
        steps: list[PlannedStep] = []
        for step in flow:
            if step.channel is Channel.FACEBOOK and request.facebook is not None:
                if dest.facebook_user_key:
                    steps.append(
                        PlannedStep(
                            step.channel,
                            step.sender,
                            dest.facebook_user_key,
                            AddressKind.USER_KEY,
                            request.facebook_validity_s,
                            facebook=request.facebook,
                            criterion=step.criterion,
                        )
                    )
                elif phone:
                    steps.append(
                        PlannedStep(
                            step.channel,
                            step.sender,
                            phone,
                            AddressKind.PHONE,
                            request.facebook_validity_s,
                            facebook=request.facebook,
                            criterion=step.criterion,
                        )
                    )
            elif step.channel is Channel.SMS and request.sms is not None and phone:
                steps.append(
                    PlannedStep(
                        step.channel,
                        step.sender,
                        phone,
                        AddressKind.PHONE,
                        request.sms_validity_s,
                        sms=request.sms,
                        criterion=step.criterion,
                    )
                )
        if not steps:
            return (), (MISSING_TO, NO_ERROR)
        return tuple(steps), None
