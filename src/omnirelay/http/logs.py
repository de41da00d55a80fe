"""`GET /omni/1/logs` and `GET /facebook/1/logs`: every filter of docs/api.md#logs, newest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from omnirelay.domain.errors import ValidationFailed
from omnirelay.domain.statuses import STATUSES, StatusGroup
from omnirelay.domain.times import format_time, parse_time
from omnirelay.http.context import account, channel_param, int_param, json_response, services
from omnirelay.http.types import (
    AnalyticsOut,
    AttemptOut,
    ErrorOut,
    FailedOut,
    FunnelScenarioOut,
    FunnelStepOut,
    LateDeliveryOut,
    LogOut,
    LogsOut,
    PriceOut,
    status_out,
)
from omnirelay.ports import Api, LogFilter, LogRow, PriceList
from omnirelay.services.reports import destination_price, error_json, price_json


def _multi(request: Request, *names: str) -> tuple[str, ...]:
    """Repeated parameters and comma-separated values, under any of the spellings."""
    values: list[str] = []
    for name in names:
        for raw in request.query_params.getlist(name):
            values.extend(v.strip() for v in raw.split(",") if v.strip())
    return tuple(values)


def _time(request: Request, name: str) -> Any:
    raw = request.query_params.get(name)
    if not raw:  # empty: no bound (the document's type is a string, and an empty one is one)
        return None
    try:
        return parse_time(raw.replace(" ", "+"))  # a '+' in a query string arrives as a space
    except ValueError:
        raise ValidationFailed(
            field=name, problem="must be a date-time like 2015-02-22T17:42:05.390+01:00"
        ) from None


def log_filter(request: Request) -> LogFilter:
    q = request.query_params
    statuses = None
    general = q.get("generalStatus")
    if general is not None:
        if general not in StatusGroup.__members__:
            raise ValidationFailed(field="generalStatus", problem=f"unknown status group {general}")
        group = StatusGroup[general]
        statuses = tuple(s.id for s in STATUSES.values() if s.group is group)
    if q.get("mcc") or q.get("mnc"):
        statuses = ()  # no network is known for any message yet (mccMnc is absent): nothing matches
    return LogFilter(
        sender=q.get("from"),
        to=q.get("to"),
        bulk_ids=_multi(request, "bulkId", "bulkid"),
        message_ids=_multi(request, "messageId", "messageid"),
        status_ids=statuses,
        channel=channel_param(request),
        sent_since=_time(request, "sentSince"),
        sent_until=_time(request, "sentUntil"),
        limit=int_param(request, "limit", 50, 1, 1000),
    )


def render(row: LogRow, api: Api, prices: PriceList | None = None) -> LogOut:
    return LogOut(
        bulkId=row.bulk_id,
        messageId=row.message_id,
        to=row.to,
        from_=row.sender,
        text=row.text,
        sentAt=format_time(row.sent_at or row.created_at),
        doneAt=format_time(row.done_at) if row.done_at is not None else None,
        messageCount=row.message_count,
        price=PriceOut(
            **price_json(row.message_count, destination_price(row.channel, row.to, row.status, prices))
        ),
        status=status_out(row.status),
        channel=row.channel if api is Api.OMNI else None,
        attempts=[
            AttemptOut(
                channel=a.channel,
                to=a.to,
                status=status_out(a.status),
                error=ErrorOut(**error_json(a.error)),
                sentAt=format_time(a.sent_at) if a.sent_at else None,
                doneAt=format_time(a.done_at) if a.done_at else None,
                lateDelivery=(
                    LateDeliveryOut(
                        status=status_out(a.late_status),
                        doneAt=format_time(a.late_at) if a.late_at else None,
                    )
                    if a.late_status is not None
                    else None
                ),
                successCriterion=a.criterion.value,
                deliveredAt=format_time(a.delivered_at) if a.delivered_at else None,
                seenAt=format_time(a.seen_at) if a.seen_at else None,
            )
            for a in row.attempts
        ],
    )


async def _logs(request: Request, api: Api) -> Response:
    account_id = await account(request)
    svc = services(request)
    rows = await svc.logs.logs(account_id, api, log_filter(request))
    return json_response(LogsOut([render(r, api, svc.prices) for r in rows]))


async def omni_logs(request: Request) -> Response:
    return await _logs(request, Api.OMNI)


async def facebook_logs(request: Request) -> Response:
    return await _logs(request, Api.FACEBOOK)


ANALYTICS_PERIOD = timedelta(hours=24)  # `since` left out: the day before `until`


async def analytics(request: Request) -> Response:
    """docs/api.md#analytics: the funnel of the account's scenarios, read from stored attempts."""
    account_id = await account(request)
    svc = services(request)
    until = _time(request, "until") or (svc.clock.now() if svc.clock is not None else datetime.now(UTC))
    since = _time(request, "since") or until - ANALYTICS_PERIOD
    rows = await svc.logs.funnel(account_id, since, until) if since < until else []
    by_scenario: dict[str | None, list[FunnelStepOut]] = {}
    for r in rows:
        by_scenario.setdefault(r.scenario_key, []).append(
            FunnelStepOut(
                step=r.step_index,
                channel=r.channel,
                sent=r.sent,
                met=r.met,
                failed=FailedOut(
                    rejected=r.failed_rejected, failureReceipt=r.failed_receipt, expired=r.failed_expired
                ),
                lateSuccess=r.late_success,
            )
        )
    return json_response(
        AnalyticsOut(
            since=format_time(since),
            until=format_time(until),
            scenarios=[FunnelScenarioOut(key, steps) for key, steps in by_scenario.items()],
        )
    )


def routes() -> list[Route]:
    return [
        Route("/omni/1/analytics", analytics, methods=["GET"]),
        Route("/omni/1/logs", omni_logs, methods=["GET"]),
        Route("/facebook/1/logs", facebook_logs, methods=["GET"]),
    ]
