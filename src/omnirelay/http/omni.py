"""OMNI routes: scenarios, advanced and text sends, reports."""

from __future__ import annotations

import math
from datetime import datetime

import httpx
import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from omnirelay.domain.errors import ValidationFailed
from omnirelay.domain.failover import MAX_VALIDITY_S, clamp_validity_s
from omnirelay.domain.messages import (
    FacebookContent,
    FacebookKind,
    MessageTag,
    MessagingType,
    SmsContent,
    check_facebook_content,
)
from omnirelay.domain.scenarios import RawStep, Scenario
from omnirelay.domain.times import parse_time
from omnirelay.http.body import decode, decode_raw
from omnirelay.http.context import Services, account, int_param, json_response, pull_reports, services
from omnirelay.http.sends import via_starlette
from omnirelay.http.types import (
    DestinationIn,
    FacebookOmniIn,
    OmniAdvancedIn,
    OmniMessageOut,
    OmniOut,
    OmniTextIn,
    ScenarioIn,
    ScenarioOut,
    ScenariosOut,
    SmsIn,
    StepOut,
    ToIn,
    encoder,
    status_out,
)
from omnirelay.ports import Api, IdempotentRequest, IdempotentSend
from omnirelay.services.omni import OmniDestination, OmniRequest, OmniResult
from omnirelay.services.scenarios import ScenarioChange

_UNIT_S = {
    "NANOSECONDS": 1e-9,
    "MICROSECONDS": 1e-6,
    "MILLISECONDS": 1e-3,
    "SECONDS": 1,
    "MINUTES": 60,
    "HOURS": 3600,
    "DAYS": 86400,
}


def scenario_out(s: Scenario) -> ScenarioOut:
    return ScenarioOut(
        s.key,
        s.name,
        [StepOut(st.sender, st.channel.value, st.criterion.value) for st in s.flow],
        s.is_default,
    )


def change_from(body: ScenarioIn) -> ScenarioChange:
    flow: list[RawStep] | None = (
        [(step.from_, step.channel, step.successCriterion) for step in body.flow]
        if body.flow is not None
        else None
    )
    is_default = body.default if body.default is not None else body.defaultScenario
    return ScenarioChange(body.name, flow, is_default)


def bool_param(request: Request, *names: str) -> bool | None:
    """The first of the spellings present; every one present must be a boolean."""
    found: bool | None = None
    for name in names:
        raw = request.query_params.get(name)
        if raw is not None:
            if raw.lower() not in ("true", "false"):
                raise ValidationFailed(field=name, problem="must be true or false")
            found = raw.lower() == "true" if found is None else found
    return found


async def create_scenario(request: Request) -> Response:
    account_id = await account(request)
    body = await decode(request, ScenarioIn, services(request).max_body_bytes)
    return json_response(
        scenario_out(await services(request).scenarios.create(account_id, change_from(body)))
    )


async def list_scenarios(request: Request) -> Response:
    account_id = await account(request)
    found = await services(request).scenarios.list(
        account_id,
        bool_param(request, "default", "isDefault"),
        int_param(request, "page", 0, 0, 1_000_000),
        int_param(request, "limit", 100, 1, 1000),
    )
    return json_response(ScenariosOut([scenario_out(s) for s in found]))


async def get_scenario(request: Request) -> Response:
    account_id = await account(request)
    return json_response(
        scenario_out(await services(request).scenarios.get(account_id, request.path_params["key"]))
    )


async def update_scenario(request: Request) -> Response:
    account_id = await account(request)
    body = await decode(request, ScenarioIn, services(request).max_body_bytes)
    updated = await services(request).scenarios.update(
        account_id, request.path_params["key"], change_from(body)
    )
    return json_response(scenario_out(updated))


async def delete_scenario(request: Request) -> Response:
    account_id = await account(request)
    await services(request).scenarios.delete(account_id, request.path_params["key"])
    return Response(status_code=204)


def validity_s(value: int | str | None, unit: str | None, where: str) -> int:
    if value is None:
        return MAX_VALIDITY_S
    try:
        amount = float(value)
    except ValueError:
        raise ValidationFailed(field=f"{where}.validityPeriod", problem="must be a number") from None
    if not math.isfinite(amount):  # float() reads "NaN" and "Infinity" too
        raise ValidationFailed(field=f"{where}.validityPeriod", problem="must be a finite number")
    if amount <= 0:
        raise ValidationFailed(field=f"{where}.validityPeriod", problem="must be positive")
    return clamp_validity_s(amount * _UNIT_S[unit or "MINUTES"])


def facebook_content(fb: FacebookOmniIn | None, fallback_text: str | None = None) -> FacebookContent | None:
    if fb is None:
        return FacebookContent(FacebookKind.TEXT, text=fallback_text) if fallback_text else None
    kind = FacebookKind(fb.type) if fb.type else FacebookKind.TEXT
    content = FacebookContent(
        kind,
        text=fb.text,
        url=fb.url,
        messaging_type=MessagingType(fb.messagingType or MessagingType.UPDATE),
        tag=MessageTag(fb.tag) if fb.tag else None,
    )
    check_facebook_content(content, "facebook")
    return content


def destinations(raw: list[DestinationIn]) -> tuple[OmniDestination, ...]:
    return tuple(
        OmniDestination(
            to=msgspec.structs.asdict(d.to),
            phone_number=d.to.phoneNumber,
            facebook_user_key=d.to.facebookUserKey,
            message_id=d.messageId,
        )
        for d in raw
    )


def notify_url(url: str | None) -> str | None:
    """The URL as the push adapter (httpx) will read it: a URL it cannot parse or connect to is
    refused here, not retried for a day (docs/decisions/0008-input-limits.md)."""
    if url is None:
        return None
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("http", "https") or not rest:
        raise ValidationFailed(field="notifyUrl", problem="must be an absolute http(s) URL")
    try:
        parsed = httpx.URL(url)
        host, port = parsed.host, parsed.port  # the host is decoded (IDNA) when read
    except (httpx.InvalidURL, ValueError) as exc:  # IDNAError (a ValueError): a bad international name
        raise ValidationFailed(field="notifyUrl", problem=f"is not a valid URL ({exc})") from None
    if not host or any(c.isspace() or c in '%<>\\^`{|}"' for c in host):
        raise ValidationFailed(field="notifyUrl", problem="must name a valid host")
    if port is not None and not 1 <= port <= 65535:
        raise ValidationFailed(field="notifyUrl", problem="port must be between 1 and 65535")
    return url


def send_at(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        return parse_time(raw)
    except ValueError:
        raise ValidationFailed(
            field="sendAt", problem="must be a date-time like 2016-12-24T09:00:00.000+0100"
        ) from None


def render(result: OmniResult) -> bytes:
    return encoder.encode(
        OmniOut(
            messages=[
                OmniMessageOut(ToIn(**m.to), status_out(m.status), m.message_id) for m in result.messages
            ],
            bulkId=result.bulk_id,
        )
    )


async def advanced(request: Request) -> Response:
    return await via_starlette(request, send_advanced)


async def send_advanced(svc: Services, account_id: int, raw: bytes, idem: IdempotentRequest | None) -> bytes:
    """`POST /omni/1/advanced` once authenticated (served by `sends`)."""
    body = decode_raw(raw, OmniAdvancedIn)
    if body.notifyContentType not in (None, "application/json"):
        raise ValidationFailed(field="notifyContentType", problem="only application/json is supported")
    sms: SmsIn | None = body.sms
    req = OmniRequest(
        destinations=destinations(body.destinations),
        scenario_key=body.scenarioKey,
        bulk_id=body.bulkId,
        facebook=facebook_content(body.facebook),
        facebook_validity_s=validity_s(
            body.facebook.validityPeriod if body.facebook else None,
            body.facebook.validityPeriodTimeUnit if body.facebook else None,
            "facebook",
        ),
        sms=SmsContent(sms.text) if sms is not None else None,
        sms_validity_s=validity_s(
            sms.validityPeriod if sms else None, sms.validityPeriodTimeUnit if sms else None, "sms"
        ),
        send_at=send_at(body.sendAt),
        notify_url=notify_url(body.notifyUrl),
        callback_data=body.callbackData,
        intermediate_report=body.intermediateReport,
        notify=body.notify,
    )
    return render(
        await svc.omni.send(account_id, req, IdempotentSend(idem, render) if idem is not None else None)
    )


async def text(request: Request) -> Response:
    return await via_starlette(request, send_text)


async def send_text(svc: Services, account_id: int, raw: bytes, idem: IdempotentRequest | None) -> bytes:
    """`POST /omni/1/text` once authenticated (served by `sends`)."""
    body = decode_raw(raw, OmniTextIn)
    if not body.text:
        raise ValidationFailed(field="text", problem="must not be empty")
    req = OmniRequest(
        destinations=destinations(body.destinations),
        scenario_key=body.scenarioKey,
        bulk_id=body.bulkId,
        facebook=FacebookContent(FacebookKind.TEXT, text=body.text),
        sms=SmsContent(body.text),
    )
    return render(
        await svc.omni.send(account_id, req, IdempotentSend(idem, render) if idem is not None else None)
    )


async def reports(request: Request) -> Response:
    return await pull_reports(request, Api.OMNI)


def routes() -> list[Route]:
    return [
        Route("/omni/1/scenarios", create_scenario, methods=["POST"]),
        Route("/omni/1/scenarios", list_scenarios, methods=["GET"]),
        Route("/omni/1/scenarios/{key}", get_scenario, methods=["GET"]),
        Route("/omni/1/scenarios/{key}", update_scenario, methods=["PUT"]),
        Route("/omni/1/scenarios/{key}", delete_scenario, methods=["DELETE"]),
        Route("/omni/1/advanced", advanced, methods=["POST"]),
        Route("/omni/1/text", text, methods=["POST"]),
        Route("/omni/1/reports", reports, methods=["GET"]),
    ]
