"""Report rows (docs/api.md#reports) and where each goes: pushed to notifyUrl, or queued for pull."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from omnirelay.domain.failover import PlannedStep, StepResult
from omnirelay.domain.prices import FREE, Price
from omnirelay.domain.statuses import ErrorCode, Status, StatusGroup
from omnirelay.domain.times import format_time
from omnirelay.ports import Api, MessageRecord, NewReport, PriceList, ReportState


def status_json(status: Status) -> dict[str, Any]:
    return {
        "groupId": int(status.group),
        "groupName": status.group.name,
        "id": status.id,
        "name": status.name,
        "description": status.description,
    }


def error_json(error: ErrorCode) -> dict[str, Any]:
    return {
        "groupId": error.group_id,
        "groupName": error.group_name,
        "id": error.id,
        "name": error.name,
        "description": error.description,
        "permanent": error.permanent,
    }


def price_json(message_count: int, price: Price = FREE) -> dict[str, Any]:
    """docs/api.md#prices: the unit price (per message; per segment for SMS); the message costs
    `pricePerMessage × messageCount`. Default 0 EUR."""
    return {"pricePerMessage": price.price_per_message, "currency": price.currency}


def step_price(step: PlannedStep, status: Status, prices: PriceList | None) -> Price:
    """The price list's price for a step's channel and destination country; nothing was sent for
    a REJECTED status, so that costs 0 (in the listed currency)."""
    if prices is None:
        return FREE
    return _charged(prices.for_destination(step.channel.value, step.to, step.to_kind), status)


def destination_price(channel: str, to: str, status: Status, prices: PriceList | None) -> Price:
    """As `step_price`, for a channel and an address (a phone number's digits give the country)."""
    if prices is None:
        return FREE
    return _charged(prices.for_destination(channel, to), status)


def _charged(price: Price, status: Status) -> Price:
    if status.group is StatusGroup.REJECTED:
        return Price(price.channel, price.country, 0.0, price.currency)
    return price


def render(
    *,
    api: Api,
    message_id: str,
    bulk_id: str | None,
    to: str,
    channel: str,
    sent_at: datetime | None,
    done_at: datetime,
    message_count: int,
    status: Status,
    error: ErrorCode,
    callback_data: str | None,
    price: Price = FREE,
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if bulk_id is not None:
        body["bulkId"] = bulk_id
    body["messageId"] = message_id
    body["to"] = to
    body["sentAt"] = format_time(sent_at or done_at)
    body["doneAt"] = format_time(done_at)
    body["messageCount"] = message_count
    body["price"] = price_json(message_count, price)
    body["status"] = status_json(status)
    body["error"] = error_json(error)
    if api is Api.OMNI:
        body["channel"] = channel
    if callback_data is not None:
        body["callbackData"] = callback_data
    return body


class RejectedAtAcceptance:
    """The final reports of one request's destinations rejected at acceptance: pushed when there is
    somewhere to push them (`notify_url`, None when `notify` is off), else queued for pull.

    Within a request they differ only by message id, and by address, status and error from one
    group of them to the next: each group's body is rendered and encoded once and completed with
    each message's id (rendering and encoding every body was ~50 ms of a request of 10,000)."""

    def __init__(
        self,
        *,
        api: Api,
        bulk_id: str | None,
        channel: str,
        now: datetime,
        callback_data: str | None,
        notify_url: str | None,
    ) -> None:
        self._api = api
        self._bulk_id = bulk_id
        self._channel = channel
        self._now = now
        self._callback_data = callback_data
        self._state = ReportState.PUSH if notify_url else ReportState.PULL
        self._push_at = now if notify_url else None
        # (to, status, error) -> the encoded body before and after its message id; None where the
        # marker also occurs in the request's own values, and each body is rendered whole
        self._parts: dict[tuple[str, int, int], tuple[bytes, bytes] | None] = {}

    def report(self, message_id: str, to: str, status: Status, error: ErrorCode) -> NewReport:
        key = (to, status.id, error.id)
        if key not in self._parts:
            head, mark, tail = _encoder.encode(self._body(_MARK, to, status, error)).partition(_MARK_JSON)
            self._parts[key] = (head, tail) if mark and _MARK_JSON not in tail else None
        parts = self._parts[key]
        if parts is None:
            body: dict[str, Any] | msgspec.Raw = self._body(message_id, to, status, error)
        else:
            body = msgspec.Raw(parts[0] + _encoder.encode(message_id) + parts[1])
        return NewReport("FINAL", self._state, body, self._channel, self._push_at)

    def _body(self, message_id: str, to: str, status: Status, error: ErrorCode) -> dict[str, Any]:
        return render(
            api=self._api,
            message_id=message_id,
            bulk_id=self._bulk_id,
            to=to,
            channel=self._channel,
            sent_at=self._now,
            done_at=self._now,
            message_count=1,
            status=status,
            error=error,
            callback_data=self._callback_data,
        )


_encoder = msgspec.json.Encoder()
_MARK = "\u0000omnirelay-message-id\u0000"  # no message id holds a NUL (docs/decisions/0008-input-limits.md)
_MARK_JSON = _encoder.encode(_MARK)


def destination(record: MessageRecord, now: datetime) -> tuple[ReportState, datetime | None]:
    if record.notify and record.notify_url:
        return ReportState.PUSH, now
    return ReportState.PULL, None


def report_for(
    record: MessageRecord,
    result: StepResult,
    now: datetime,
    message_count: int,
    *,
    final: bool,
    prices: PriceList | None = None,
) -> NewReport:
    step = record.plan[result.step_index]
    body = render(
        api=record.api,
        message_id=record.message_id,
        bulk_id=record.bulk_id,
        to=step.to,
        channel=step.channel.value,
        sent_at=record.sent_at or now,
        done_at=now,
        message_count=max(message_count, 1),
        status=result.status,
        error=result.error,
        callback_data=record.callback_data,
        price=step_price(step, result.status, prices),
    )
    state, push_at = destination(record, now)
    return NewReport("FINAL" if final else "INTERMEDIATE", state, body, step.channel.value, push_at)
