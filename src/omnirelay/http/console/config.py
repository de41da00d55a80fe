"""`/console/config`: scenarios, Messenger applications, SMS routes and prices, read-only
(docs/console.md#channels-and-configuration). Secrets (Page tokens, app secrets, verify tokens,
connector passwords) are never shown."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from omnirelay.domain.scenarios import Scenario
from omnirelay.http.console.html import esc, page
from omnirelay.http.console.messages import store
from omnirelay.http.console.session import SignedIn
from omnirelay.http.context import services

MAX_SCENARIOS = 100  # per account shown; the API pages through the rest


def _scenario_rows(account: str, scenarios: list[Scenario]) -> str:
    return "".join(
        f'<tr data-scenario="{esc(s.key)}">'
        + (f"<td>{esc(account)}</td>" if account else "")
        + f"<td>{esc(s.key)}</td><td>{esc(s.name)}</td>"
        f"<td>{' → '.join(f'{esc(step.channel.value)} from {esc(step.sender)}' for step in s.flow)}</td>"
        f"<td>{'default' if s.is_default else ''}</td></tr>"
        for s in scenarios
    )


async def config_page(request: Request, session: SignedIn) -> Response:
    svc = services(request)
    account_id = session.principal.account_id
    if account_id is not None:
        accounts = {account_id: ""}
    else:
        accounts = await store(request).account_names()
    scenario_rows = ""
    app_rows = ""
    for owner, name in sorted(accounts.items()):
        scenario_rows += _scenario_rows(name, await svc.scenarios.list(owner, None, 0, MAX_SCENARIOS))
        if svc.messenger is not None:
            app_rows += "".join(
                f'<tr data-application="{esc(a.key)}">'
                + (f"<td>{esc(name)}</td>" if name else "")
                + f"<td>{esc(a.key)}</td><td>{esc(a.name)}</td><td>{esc(a.page_id)}</td>"
                f"<td>{esc(a.webhook_url or '—')}</td></tr>"
                for a in await svc.messenger.applications(owner)
            )
    who = "<th>Account</th>" if account_id is None else ""
    body = (
        '<h2>Scenarios</h2><table id="scenarios"><thead><tr>'
        f"{who}<th>Key</th><th>Name</th><th>Flow</th><th></th></tr></thead><tbody>{scenario_rows}</tbody></table>"
        '<h2>Messenger applications</h2><table id="applications"><thead><tr>'
        f"{who}<th>Key</th><th>Name</th><th>Page</th><th>Forwards inbound to</th></tr></thead>"
        f"<tbody>{app_rows}</tbody></table>"
    )
    if account_id is None:
        body += await _operator_config(request)
    else:
        body += await _prices(request)
    return page(
        "Configuration",
        body,
        principal=session.principal,
        who=session.who,
        csrf=session.csrf,
        active="config",
    )


async def _prices(request: Request) -> str:
    prices = services(request).prices
    listed = await prices.list_prices() if prices is not None else []
    rows = "".join(
        f"<tr><td>{esc(p.channel)}</td><td>{esc(p.country or 'default')}</td>"
        f'<td class="num">{p.price_per_message:g}</td><td>{esc(p.currency)}</td></tr>'
        for p in listed
    )
    return (
        '<h2>Prices</h2><table id="prices"><thead><tr><th>Channel</th><th>Country</th>'
        f'<th class="num">Per message</th><th>Currency</th></tr></thead><tbody>{rows}</tbody></table>'
    )


async def _operator_config(request: Request) -> str:
    """SMPP connectors and routes are the operator's: accounts do not see them."""
    connectors = services(request).connectors
    listed = await connectors.list_connectors() if connectors is not None else []
    routes = await connectors.routes() if connectors is not None else []
    connector_rows = "".join(
        f'<tr data-connector="{esc(c.name)}"><td>{esc(c.name)}</td><td>{esc(c.host)}:{c.port}</td>'
        f"<td>{esc(c.system_id)}</td><td>{'yes' if c.tls else 'no'}</td>"
        f'<td class="num">{c.window}</td>'
        f'<td class="num">{esc(f"{c.throughput_per_s:g}" if c.throughput_per_s else "unlimited")}</td></tr>'
        for c in listed
    )
    route_rows = "".join(
        f"<tr><td>{esc(r.prefix or 'default')}</td><td>{esc(r.connector)}</td></tr>" for r in routes
    )
    return (
        '<h2>SMPP connectors</h2><table id="connectors"><thead><tr><th>Name</th><th>SMSC</th>'
        '<th>System id</th><th>TLS</th><th class="num">Window</th><th class="num">Throughput</th></tr>'
        f"</thead><tbody>{connector_rows}</tbody></table>"
        '<h2>SMS routes</h2><table id="routes"><thead><tr><th>Prefix</th><th>Connector</th></tr></thead>'
        f"<tbody>{route_rows}</tbody></table>" + await _prices(request)
    )
