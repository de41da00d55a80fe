"""`/console/overview`: accepted and finished per minute, the failover funnel, the funnel per
scenario and step, delivery rate per channel, latency from accept to final
(docs/console.md#overview). The page is a frame; its script draws the numbers and charts from
`/console/overview.json` and polls it, so they refresh without a reload."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from omnirelay.domain.scenarios import Scenario
from omnirelay.domain.times import format_time
from omnirelay.http.console.html import SECURITY_HEADERS, page
from omnirelay.http.console.messages import store
from omnirelay.http.console.session import SignedIn
from omnirelay.http.context import int_param, json_response, services
from omnirelay.ports import FunnelRow, Overview

POLL_MS = 5000


def percentile(sorted_ms: tuple[int, ...], p: float) -> int | None:
    """Nearest rank: the smallest value with at least p % of the values at or below it."""
    if not sorted_ms:
        return None
    rank = max(1, -(-len(sorted_ms) * p // 100))
    return sorted_ms[int(rank) - 1]


def overview_json(o: Overview) -> dict[str, Any]:
    lat = o.latency_ms
    return {
        "since": format_time(o.since),
        "minutes": [{"t": t, "accepted": a, "finished": f} for t, a, f in o.minutes],
        "totals": {"accepted": sum(a for _, a, _ in o.minutes), "finished": sum(f for _, _, f in o.minutes)},
        "funnel": [
            {
                "step": s.step_index + 1,
                "channel": s.channel,
                "attempts": s.attempts,
                "delivered": s.delivered,
                "failedOver": s.failed_over,
                "failed": s.failed,
                "pending": s.pending,
            }
            for s in o.funnel
        ],
        "delivery": [
            {"channel": c, "final": n, "delivered": d, "rate": (d / n) if n else None}
            for c, n, d in o.delivery
        ],
        "latency": {
            "count": len(lat),
            "p50": percentile(lat, 50),
            "p90": percentile(lat, 90),
            "p99": percentile(lat, 99),
            "max": lat[-1] if lat else None,
        },
        "sampled": o.sampled,
    }


def _criterion(scenario: Scenario | None, step_index: int, channel: str) -> str | None:
    """The scenario's criterion for a step of the messages' plans, as the scenario is now: a plan
    keeps the scenario's steps in order, leaving out those that did not apply, so the plan's step is
    the scenario's first of its channel from that index on."""
    if scenario is None:  # deleted since, or sent before scenarios were recorded
        return None
    return next((s.criterion.value for s in scenario.flow[step_index:] if s.channel.value == channel), None)


def scenarios_json(rows: list[FunnelRow], named: dict[str, Scenario]) -> list[dict[str, Any]]:
    """`GET /omni/1/analytics`'s funnel (docs/api.md#analytics), with names and criteria."""
    out: dict[str | None, dict[str, Any]] = {}
    for r in rows:
        scenario = named.get(r.scenario_key) if r.scenario_key is not None else None
        entry = out.setdefault(
            r.scenario_key,
            {"key": r.scenario_key, "name": scenario.name if scenario is not None else None, "steps": []},
        )
        entry["steps"].append(
            {
                "step": r.step_index + 1,
                "channel": r.channel,
                "criterion": _criterion(scenario, r.step_index, r.channel),
                "sent": r.sent,
                "met": r.met,
                "failed": {
                    "rejected": r.failed_rejected,
                    "failureReceipt": r.failed_receipt,
                    "expired": r.failed_expired,
                },
                "lateSuccess": r.late_success,
            }
        )
    return list(out.values())


async def overview_data(request: Request, session: SignedIn) -> Response:
    minutes = int_param(request, "minutes", 60, 5, 24 * 60)
    svc = services(request)
    clock = svc.clock
    assert clock is not None
    now = clock.now()
    since = now - timedelta(minutes=minutes)
    account_id = session.principal.account_id
    found = await store(request).overview(account_id, since, now)
    # the same read as /omni/1/analytics, so that the console and the API agree
    rows = await svc.logs.funnel(account_id, since, now)
    named = await store(request).scenarios(
        sorted({r.scenario_key for r in rows if r.scenario_key is not None})
    )
    response = json_response({**overview_json(found), "scenarios": scenarios_json(rows, named)})
    response.headers.update(SECURITY_HEADERS)
    return response


def _card(key: str, label: str) -> str:
    return f'<div class="card"><div class="value" id="{key}">…</div><div class="label">{label}</div></div>'


async def overview_page(_request: Request, session: SignedIn) -> Response:
    scope = "every account" if session.principal.is_operator else "this account"
    body = (
        f'<section id="overview" data-src="/console/overview.json" data-poll-ms="{POLL_MS}">'
        f'<p class="updated">The last 60 minutes, {scope}. Updated <span id="updated">…</span></p>'
        '<div class="cards">'
        + _card("total-accepted", "accepted")
        + _card("total-finished", "finished")
        + _card("latency-p50", "accept → final, median")
        + _card("latency-p90", "accept → final, 90th percentile")
        + _card("latency-p99", "accept → final, 99th percentile")
        + "</div>"
        '<div class="chart" id="chart-minutes"><h2>Accepted and finished per minute</h2>'
        '<p class="legend"><span><i class="accepted"></i>accepted</span>'
        '<span><i class="finished"></i>finished</span></p><div class="plot"></div></div>'
        '<div class="grid2">'
        '<div class="chart" id="chart-funnel"><h2>Failover funnel, per step</h2>'
        '<p class="legend"><span><i class="delivered"></i>delivered</span>'
        '<span><i class="failedover"></i>failed over</span>'
        '<span><i class="failed"></i>failed, last step</span>'
        '<span><i class="pending"></i>waiting</span></p><div class="plot"></div></div>'
        '<div class="chart" id="chart-delivery"><h2>Delivery rate per channel</h2>'
        '<p class="legend"><span><i class="delivered"></i>delivered of final attempts</span></p>'
        '<div class="plot"></div></div></div>'
        '<table id="funnel"><thead><tr><th>Step</th><th>Channel</th><th class="num">Attempts</th>'
        '<th class="num">Delivered</th><th class="num">Failed over</th><th class="num">Failed</th>'
        '<th class="num">Waiting</th></tr></thead><tbody></tbody></table>'
        "<h2>Funnel per scenario and step</h2>"
        '<p class="legend">OMNI messages; each step against its success criterion, as the scenario '
        "has it now. The failures are why the message failed over, or ended on its last step.</p>"
        '<table id="scenario-funnel"><thead><tr><th>Scenario</th><th>Step</th><th>Channel</th>'
        '<th>Criterion</th><th class="num">Sent</th><th class="num">Met</th><th class="num">Rejected</th>'
        '<th class="num">Failure receipt</th><th class="num">Expired</th><th class="num">Late success</th>'
        "</tr></thead><tbody></tbody></table>"
        "<noscript>The charts need JavaScript; the numbers are at /console/overview.json.</noscript>"
        "</section>"
    )
    return page(
        "Overview",
        body,
        principal=session.principal,
        who=session.who,
        csrf=session.csrf,
        active="overview",
        script=True,
    )
