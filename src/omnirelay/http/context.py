"""What every route needs: the services, the caller's account, JSON answers, query parameters."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from omnirelay.domain.errors import ValidationFailed
from omnirelay.http.types import encoder
from omnirelay.ports import (
    Api,
    ChannelStates,
    Clock,
    ConsoleStore,
    IdempotencyStore,
    LogStore,
    MessageStore,
    ReportFilter,
)
from omnirelay.services.accounts import Authenticator
from omnirelay.services.connectors import SmsConnectors
from omnirelay.services.console_sessions import ConsoleSessions
from omnirelay.services.facebook import FacebookSingle
from omnirelay.services.membership import Membership
from omnirelay.services.messenger_inbound import MessengerInbound
from omnirelay.services.messenger_users import MessengerApplications
from omnirelay.services.omni import OmniSend
from omnirelay.services.operator import OperatorGuard
from omnirelay.services.prices import PriceBook
from omnirelay.services.ratelimit import RateLimiter
from omnirelay.services.scenarios import Scenarios


@dataclass
class Services:
    auth: Authenticator
    facebook: FacebookSingle
    scenarios: Scenarios
    omni: OmniSend
    store: MessageStore
    logs: LogStore
    ready: Callable[[], Awaitable[dict[str, bool]]]
    metrics: Callable[[], Awaitable[bytes]]  # the Prometheus exposition, gauges sampled now
    max_body_bytes: int = 1024 * 1024
    clock: Clock | None = None
    idempotency: IdempotencyStore | None = None
    limiter: RateLimiter | None = None
    operator: OperatorGuard | None = None  # /admin/1/...: the operator token
    connectors: SmsConnectors | None = None
    prices: PriceBook | None = None
    messenger: MessengerApplications | None = None  # /facebook/1/applications
    messenger_inbound: MessengerInbound | None = None  # /webhooks/facebook/{applicationKey}
    membership: Membership | None = None  # /admin/1/nodes
    console: ConsoleStore | None = None  # /console
    console_sessions: ConsoleSessions | None = None
    channel_states: Callable[[], ChannelStates] | None = None  # the senders' connectors and Pages now


def json_response(value: Any, status: int = 200) -> Response:
    return Response(encoder.encode(value), status, media_type="application/json")


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


async def account(request: Request) -> int:
    svc = services(request)
    account_id = await svc.auth.authenticate(request.headers.get("authorization"))
    if svc.limiter is not None:
        svc.limiter.check(account_id)
    return account_id


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationFailed(field=name, problem="must be an integer") from None
    if not low <= value <= high:
        raise ValidationFailed(field=name, problem=f"must be between {low} and {high}")
    return value


def channel_param(request: Request) -> str | None:
    """`channel`: FACEBOOK or SMS (the document's enum); another value is a 400, not an empty list."""
    raw = request.query_params.get("channel")
    if raw is not None and raw not in ("FACEBOOK", "SMS"):
        raise ValidationFailed(field="channel", problem="must be FACEBOOK or SMS")
    return raw


def report_filter(request: Request) -> ReportFilter:
    q = request.query_params
    return ReportFilter(
        bulk_id=q.get("bulkId"),
        message_id=q.get("messageId"),
        channel=channel_param(request),
        limit=int_param(request, "limit", 50, 1, 1000),
    )


async def pull_reports(request: Request, api: Api) -> Response:
    account_id = await account(request)
    bodies = await services(request).store.take_reports(account_id, api, report_filter(request))
    return Response(b'{"results":[' + b",".join(bodies) + b"]}", media_type="application/json")
