"""`/console/overview`: accepted and finished per minute, the failover funnel, delivery rate per
channel, latency from accept to final (docs/console.md#overview). The page is a frame; its
script draws the numbers and charts from `/console/overview.json` and polls it, so they refresh
without a reload."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from omnirelay.domain.times import format_time
from omnirelay.http.console.html import SECURITY_HEADERS, page
from omnirelay.http.console.messages import store
from omnirelay.http.console.session import SignedIn
from omnirelay.http.context import int_param, json_response, services
from omnirelay.ports import Overview

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


async def overview_data(request: Request, session: SignedIn) -> Response:
    minutes = int_param(request, "minutes", 60, 5, 24 * 60)
    clock = services(request).clock
    assert clock is not None
    now = clock.now()
    found = await store(request).overview(session.principal.account_id, now - timedelta(minutes=minutes), now)
    response = json_response(overview_json(found))
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
