"""Report rows (SPEC D7, Part 2 §5.1) and where each goes: pushed to notifyUrl, or queued for pull."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from omnirelay.domain.failover import StepResult
from omnirelay.domain.statuses import ErrorCode, Status
from omnirelay.domain.times import format_time
from omnirelay.ports import Api, MessageRecord, NewReport, ReportState


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


def price_json(message_count: int) -> dict[str, Any]:
    # SPEC D10: the price list is not configurable yet; everything costs 0 EUR.
    return {"pricePerMessage": 0, "currency": "EUR"}


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
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if bulk_id is not None:
        body["bulkId"] = bulk_id
    body["messageId"] = message_id
    body["to"] = to
    body["sentAt"] = format_time(sent_at or done_at)
    body["doneAt"] = format_time(done_at)
    body["messageCount"] = message_count
    body["price"] = price_json(message_count)
    body["status"] = status_json(status)
    body["error"] = error_json(error)
    if api is Api.OMNI:
        body["channel"] = channel
    if callback_data is not None:
        body["callbackData"] = callback_data
    return body


def destination(record: MessageRecord, now: datetime) -> tuple[ReportState, datetime | None]:
    if record.notify and record.notify_url:
        return ReportState.PUSH, now
    return ReportState.PULL, None


def report_for(
    record: MessageRecord, result: StepResult, now: datetime, message_count: int, *, final: bool
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
    )
    state, push_at = destination(record, now)
    return NewReport("FINAL" if final else "INTERMEDIATE", state, body, step.channel.value, push_at)
