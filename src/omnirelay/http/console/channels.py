"""`/console/channels`: the SMPP connectors' sessions and the Messenger Pages' pauses, as they are
now in this node, and for the operator the cluster's nodes (docs/console.md#channels-and-configuration)."""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

from omnirelay.domain.nodes import NodeState
from omnirelay.http.console.html import esc, page, when
from omnirelay.http.console.session import SignedIn
from omnirelay.http.context import services
from omnirelay.ports import ChannelStates, MessengerPageState


def _pause(until: datetime | None, reason: str | None) -> str:
    if until is None:
        return "no"
    return f'<span class="problem">until {when(until)}</span> <small>{esc(reason or "")}</small>'


async def channels_page(request: Request, session: SignedIn) -> Response:
    svc = services(request)
    states = svc.channel_states() if svc.channel_states is not None else ChannelStates()
    operator = session.principal.is_operator
    smpp_rows = "".join(
        f'<tr data-connector="{esc(c.name)}"><td>{esc(c.name)}</td>'
        + (f"<td>{esc(c.host)}:{c.port}</td>" if operator else "")
        + f'<td class="bound">{"bound" if c.bound else "<span class=problem>not bound</span>"}</td>'
        f'<td class="num">{c.binds_attempted}</td><td class="num">{c.window_in_use} / {c.window}</td>'
        f'<td class="num">{esc(f"{c.throughput_per_s:g} msg/s" if c.throughput_per_s else "unlimited")}</td>'
        f"<td>{'<span class=problem>paused</span>' if c.paused else 'no'}</td>"
        f"<td>{esc(c.last_error or '—')} {when(c.last_error_at) if c.last_error_at else ''}</td></tr>"
        for c in states.smpp
    )
    host = "<th>SMSC</th>" if operator else ""
    smpp = (
        f'<table id="smpp"><thead><tr><th>Connector</th>{host}<th>Session</th><th class="num">Binds</th>'
        '<th class="num">Window in use</th><th class="num">Throughput</th><th>Paused</th>'
        f"<th>Last problem</th></tr></thead><tbody>{smpp_rows}</tbody></table>"
        if states.smpp
        else "<p>No SMPP connector is configured.</p>"
    )
    pages = await _pages(request, session, states.pages)
    body = (
        "<h2>SMPP connectors</h2>" + smpp + "<h2>Messenger Pages</h2>" + pages + '<p class="updated">'
        "As this node sees them now; a Page appears once it has sent.</p>"
    )
    if operator:  # hosts and processes are the operator's, as /admin/1/nodes is
        body += "<h2>Cluster nodes</h2>" + await _nodes(request)
    return page(
        "Channels", body, principal=session.principal, who=session.who, csrf=session.csrf, active="channels"
    )


async def _pages(request: Request, session: SignedIn, states: tuple[MessengerPageState, ...]) -> str:
    svc = services(request)
    by_page = {p.page_id: p for p in states}
    named: list[tuple[str, str, MessengerPageState | None]] = []
    if session.principal.account_id is not None and svc.messenger is not None:
        for app in await svc.messenger.applications(session.principal.account_id):
            named.append((app.page_id, f"{app.name} ({app.key})", by_page.get(app.page_id)))
    else:  # the operator: every Page the sender has used
        named = [(p.page_id, "", p) for p in states]
    if not named:
        return "<p>No Messenger Page has sent yet.</p>"
    rows = "".join(
        f'<tr data-page="{esc(page_id)}"><td>{esc(page_id)}</td><td>{esc(name)}</td>'
        + (
            f"<td>{_pause(s.paused_until, s.paused_reason)}</td>"
            f"<td>{_pause(s.phone_paused_until, s.phone_paused_reason)}</td>"
            f"<td>{_pause(s.throttled_until, None)}</td>"
            if s is not None
            else "<td>no</td><td>no</td><td>no send yet</td>"
        )
        + "</tr>"
        for page_id, name, s in named
    )
    return (
        '<table id="pages"><thead><tr><th>Page</th><th>Application</th><th>Paused</th>'
        "<th>Sends by phone number stopped</th><th>Throttled</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _state(state: NodeState) -> str:
    return esc(state.value) if state is NodeState.LIVE else f'<span class="problem">{esc(state.value)}</span>'


async def _nodes(request: Request) -> str:
    membership = services(request).membership
    if membership is None:
        return "<p>This node is not part of a cluster.</p>"
    members, live = await membership.members()
    me = membership.node_id
    rows = "".join(
        f'<tr data-node="{esc(n.node_id)}" data-state="{esc(state.value)}"><td>{esc(n.node_id)}'
        f"{' <small>(this node)</small>' if n.node_id == me else ''}</td>"
        f'<td class="state">{_state(state)}</td>'
        f'<td>{esc(n.host)}</td><td class="num">{n.pid}</td><td>{esc(n.version)}</td>'
        f"<td>{when(n.started_at)}</td><td>{when(n.heartbeat_at)}</td></tr>"
        for n, state in members
    )
    return (
        '<table id="nodes"><thead><tr><th>Node</th><th>State</th><th>Host</th><th class="num">PID</th>'
        "<th>Version</th><th>Started</th><th>Last heartbeat</th></tr></thead>"
        f'<tbody>{rows}</tbody></table><p class="updated">{live} live; STALE after '
        f"{membership.stale_s:g} s without a heartbeat, by the database's clock.</p>"
    )
