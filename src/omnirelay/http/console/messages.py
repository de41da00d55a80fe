"""`/console/messages`: the search, newest first with keyset pages, and a message's journey."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from omnirelay.domain.errors import NotFound, ValidationFailed
from omnirelay.domain.statuses import STATUSES, StatusGroup
from omnirelay.http.console.html import esc, page, query_string, status_badge, when
from omnirelay.http.console.journey import journey_body
from omnirelay.http.console.session import SignedIn
from omnirelay.http.context import services
from omnirelay.ports import ConsoleMessage, ConsoleQuery, ConsoleStore

PAGE_SIZE = 50
MAX_FIELD = 200  # the longest message id, bulk id or destination the store keeps
FIELDS = ("messageId", "bulkId", "to", "status", "channel", "since", "until")
WITHHELD = '<span class="withheld" title="message content is not shown to the operator">withheld</span>'


def store(request: Request) -> ConsoleStore:
    found = services(request).console
    assert found is not None, "the console is wired in bootstrap"
    return found


def _text(request: Request, name: str) -> str | None:
    raw = request.query_params.get(name, "").strip()
    if len(raw) > MAX_FIELD:
        raise ValidationFailed(field=name, problem=f"must be at most {MAX_FIELD} characters")
    return raw or None


def _time(request: Request, name: str) -> datetime | None:
    raw = _text(request, name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ValidationFailed(
            field=name, problem="must be a date-time like 2026-12-04T21:30 (UTC)"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _cursor(request: Request) -> tuple[int, int] | None:
    raw = _text(request, "before")
    if raw is None:
        return None
    created, _, pk = raw.partition("-")
    if not (created.isdigit() and pk.isdigit()):
        raise ValidationFailed(field="before", problem="must be a cursor from a previous page")
    return int(created), int(pk)


def query(request: Request) -> ConsoleQuery:
    status = _text(request, "status")
    statuses = None
    if status is not None:
        if status not in StatusGroup.__members__:
            raise ValidationFailed(field="status", problem=f"unknown status group {status}")
        statuses = tuple(s.id for s in STATUSES.values() if s.group is StatusGroup[status])
    channel = _text(request, "channel")
    if channel is not None and channel not in ("FACEBOOK", "SMS"):
        raise ValidationFailed(field="channel", problem="must be FACEBOOK or SMS")
    return ConsoleQuery(
        message_id=_text(request, "messageId"),
        bulk_id=_text(request, "bulkId"),
        to=_text(request, "to"),
        status_ids=statuses,
        channel=channel,
        since=_time(request, "since"),
        until=_time(request, "until"),
        before=_cursor(request),
        limit=PAGE_SIZE,
    )


def _select(name: str, current: str, options: list[str]) -> str:
    opts = "".join(
        f'<option value="{esc(o)}"{" selected" if o == current else ""}>{esc(o or "any")}</option>'
        for o in options
    )
    return f'<select name="{name}" id="f-{name}">{opts}</select>'


def _search_form(request: Request) -> str:
    q = request.query_params

    def field(name: str, label: str) -> str:
        return (
            f'<label>{label} <input name="{name}" id="f-{name}" value="{esc(q.get(name, ""))}"'
            f' maxlength="{MAX_FIELD}"></label>'
        )

    return (
        '<form method="get" action="/console/messages" class="search" id="search">'
        + field("messageId", "Message id")
        + field("bulkId", "Bulk id")
        + field("to", "Destination")
        + f"<label>Status {_select('status', q.get('status', ''), ['', *StatusGroup.__members__])}</label>"
        + f"<label>Channel {_select('channel', q.get('channel', ''), ['', 'FACEBOOK', 'SMS'])}</label>"
        + field("since", "From (UTC)")
        + field("until", "Until (UTC)")
        + '<button type="submit">Search</button></form>'
    )


def _row(m: ConsoleMessage, session: SignedIn, names: dict[int, str]) -> str:
    operator = session.principal.is_operator
    account = f"<td>{esc(names.get(m.account_id, m.account_id))}</td>" if operator else ""
    text = WITHHELD if operator else esc(m.text or "")
    return (
        f'<tr data-message-id="{esc(m.message_id)}"><td>{when(m.created_at)}</td>'
        f'<td><a href="/console/messages/{m.pk}">{esc(m.message_id)}</a></td>'
        f"<td>{esc(m.bulk_id or '')}</td>{account}<td>{esc(m.to)}</td><td>{esc(m.channel)}</td>"
        f"<td>{status_badge(m.status)}</td><td>{esc(m.error.name)}</td><td>{when(m.done_at)}</td>"
        f'<td class="text">{text}</td></tr>'
    )


async def messages_page(request: Request, session: SignedIn) -> Response:
    console = store(request)
    found = await console.search(session.principal.account_id, query(request))
    names = await console.account_names() if session.principal.is_operator else {}
    head = "<th>Accepted</th><th>Message id</th><th>Bulk id</th>"
    head += "<th>Account</th>" if session.principal.is_operator else ""
    head += "<th>To</th><th>Channel</th><th>Status</th><th>Error</th><th>Done</th><th>Text</th>"
    rows = "".join(_row(m, session, names) for m in found.rows)
    table = (
        f'<table class="messages" id="messages"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
        if found.rows
        else '<p class="empty" id="no-messages">No message matches.</p>'
    )
    pager = ""
    if found.next_before is not None:
        params = {k: request.query_params.get(k, "") for k in FIELDS}
        params["before"] = f"{found.next_before[0]}-{found.next_before[1]}"
        older = esc(query_string(params))
        pager = f'<p class="pager"><a id="older" href="/console/messages?{older}">Older →</a></p>'
    first = ""
    if request.query_params.get("before"):
        params = {k: request.query_params.get(k, "") for k in FIELDS}
        first = f'<p class="pager"><a href="/console/messages?{esc(query_string(params))}">← Newest</a></p>'
    body = _search_form(request) + first + table + pager
    return page(
        "Messages", body, principal=session.principal, who=session.who, csrf=session.csrf, active="messages"
    )


async def journey_page(request: Request, session: SignedIn) -> Response:
    raw = request.path_params["pk"]
    found = await store(request).journey(session.principal.account_id, raw)
    if found is None:
        raise NotFound("No such message in this account.")
    names = await store(request).account_names() if session.principal.is_operator else {}
    body = journey_body(found, session.principal.is_operator, names)
    return page(
        f"Message {found.message.message_id}",
        body,
        principal=session.principal,
        who=session.who,
        csrf=session.csrf,
        active="messages",
    )
