"""The console's HTML: one layout, and helpers that escape every value they are given.

Pages are built from strings; anything that did not come from this module's own literals goes
through `esc` (message text, callbackData, ids, error texts), so a message cannot inject markup.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from urllib.parse import urlencode

from starlette.responses import HTMLResponse

from omnirelay.domain.statuses import Status
from omnirelay.services.console_sessions import Principal

ASSET_VERSION = "3"
# No inline script or style anywhere: the policy forbids them, and no asset comes from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}

NAV = (
    ("overview", "Overview"),
    ("messages", "Messages"),
    ("channels", "Channels"),
    ("config", "Configuration"),
)


def esc(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def when(value: datetime | None) -> str:
    """UTC, to the millisecond, in a <time> element; an em dash for none."""
    if value is None:
        return "—"
    text = value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    return f'<time datetime="{esc(value.isoformat())}">{esc(text)}</time>'


def status_badge(status: Status) -> str:
    return (
        f'<span class="badge g-{esc(status.group.name.lower())}" title="{esc(status.description)}">'
        f"{esc(status.name)}</span>"
    )


def query_string(params: dict[str, str]) -> str:
    return urlencode({k: v for k, v in params.items() if v})


def csrf_field(token: str) -> str:
    return f'<input type="hidden" name="csrf" value="{esc(token)}">'


def page(
    title: str,
    body: str,
    *,
    principal: Principal | None = None,
    who: str = "",
    csrf: str = "",
    active: str = "",
    status_code: int = 200,
    script: bool = False,
) -> HTMLResponse:
    nav = ""
    if principal is not None:
        links = "".join(
            f'<a href="/console/{name}"{" class=active" if name == active else ""}>{label}</a>'
            for name, label in NAV
        )
        role = "operator" if principal.is_operator else "account"
        nav = (
            f'<nav><span class="brand">omnirelay console</span>{links}'
            f'<span class="who" data-role="{role}">{esc(who)}</span>'
            f'<form method="post" action="/console/logout" class="logout">{csrf_field(csrf)}'
            '<button type="submit">Sign out</button></form></nav>'
        )
    js = f'<script src="/console/static/console.js?v={ASSET_VERSION}"></script>' if script else ""
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · omnirelay</title>"
        f'<link rel="stylesheet" href="/console/static/console.css?v={ASSET_VERSION}"></head>'
        f"<body>{nav}<main><h1>{esc(title)}</h1>{body}</main>{js}</body></html>"
    )
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def problem(
    title: str,
    detail: str,
    status_code: int,
    *,
    principal: Principal | None = None,
    who: str = "",
    csrf: str = "",
) -> HTMLResponse:
    body = f'<p class="problem">{esc(detail)}</p>'
    return page(title, body, principal=principal, who=who, csrf=csrf, status_code=status_code)
