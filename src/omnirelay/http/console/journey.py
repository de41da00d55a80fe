"""A message's journey as a timeline (docs/console.md#a-messages-journey): the planned steps, each
attempt and the channel's answer, receipts (late ones marked), the failover decisions and their
reasons, the final status, and the reports with their pushes."""

from __future__ import annotations

from omnirelay.domain.statuses import StatusGroup
from omnirelay.http.console.html import esc, status_badge, when
from omnirelay.ports import Journey, JourneyAttempt

WITHHELD = '<span class="withheld">withheld from the operator</span>'
REPORT_STATES = {"PUSH": "to be pushed", "PULL": "to be pulled", "DONE": "done"}


def failover_reason(a: JourneyAttempt) -> str:
    """Why the flow left this attempt's step, from what the attempt recorded."""
    group = a.status.group
    if group is StatusGroup.EXPIRED:
        return f"no delivery before the step's validity ended ({a.status.name}, {a.error.name})"
    if group is StatusGroup.REJECTED:
        return f"the channel refused the message ({a.status.name}, {a.error.name}: {a.error.description})"
    if group is StatusGroup.UNDELIVERABLE:
        return f"the channel could not deliver it ({a.status.name}, {a.error.name}: {a.error.description})"
    return f"the step ended with {a.status.name} ({a.error.name})"


def _dl(items: list[tuple[str, str]]) -> str:
    return "<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


def _attempt(a: JourneyAttempt) -> str:
    refs = ", ".join(f"{esc(ref)}{' ✓' if delivered else ''}" for ref, delivered in a.refs) or "—"
    rows = [
        ("Sent", when(a.sent_at)),
        ("Tries", esc(a.tries)),
        ("Channel's ids", refs),
        ("Answer", status_badge(a.status)),
        ("Error", f"{esc(a.error.name)} <small>{esc(a.error.description)}</small>"),
        ("Ended", when(a.done_at)),
    ]
    if a.message_count:
        rows.insert(2, ("Parts", esc(a.message_count)))
    late = ""
    if a.late_status is not None:
        error = a.late_error.name if a.late_error is not None else ""
        late = (
            f'<p class="late" data-late="{esc(a.late_status.name)}">Late receipt, after the step had ended: '
            f"{status_badge(a.late_status)} {esc(error)} at {when(a.late_at)}</p>"
        )
    return _dl(rows) + late


def journey_body(j: Journey, operator: bool, names: dict[int, str]) -> str:
    m = j.message
    summary: list[tuple[str, str]] = [("Message id", esc(m.message_id)), ("Bulk id", esc(m.bulk_id or "—"))]
    if operator:
        summary.append(("Account", esc(names.get(m.account_id, m.account_id))))
    summary += [
        ("API", esc(m.api)),
        ("Status", status_badge(m.status)),
        ("Error", esc(m.error.name)),
        ("Accepted", when(m.created_at)),
        ("Done", when(m.done_at)),
        ("Phase", esc(j.phase)),
        ("Notify URL", esc(j.notify_url or "—")),
        (
            "Callback data",
            WITHHELD if operator else f'<span id="callback-data">{esc(j.callback_data or "—")}</span>',
        ),
        ("Text", WITHHELD if operator else f'<span id="text">{esc(m.text or "—")}</span>'),
    ]
    tried = {a.step_index: a for a in j.attempts}
    items = [f'<li class="event accepted"><h3>Accepted</h3>{when(m.created_at)}</li>']
    for index, step in enumerate(j.plan):
        attempt = tried.get(index)
        head = (
            f"<h3>Step {index + 1}: {esc(step.channel.value)} from {esc(step.sender)} to {esc(step.to)}</h3>"
            f"<p class=planned>planned, valid {esc(step.validity_s)} s</p>"
        )
        if attempt is None:
            state = (
                "current: not sent yet"
                if j.phase != "DONE" and index == j.step_index
                else ("not needed" if index > max(tried, default=-1) else "not sent")
            )
            items.append(
                f'<li class="event step untried" data-step="{index}" '
                f'data-channel="{esc(step.channel.value)}">'
                f"{head}<p>{esc(state)}</p></li>"
            )
            continue
        items.append(
            f'<li class="event step" data-step="{index}" data-channel="{esc(attempt.channel)}" '
            f'data-status="{esc(attempt.status.name)}" data-group="{esc(attempt.status.group.name)}">'
            f"{head}{_attempt(attempt)}</li>"
        )
        if index + 1 in tried and not attempt.status.is_success:
            items.append(
                f'<li class="event failover" data-from="{index}"><h3>Failover to step {index + 2}</h3>'
                f"<p>{esc(failover_reason(attempt))}</p></li>"
            )
    if j.phase == "DONE":
        items.append(
            f'<li class="event final" data-status="{esc(m.status.name)}"><h3>Final</h3>'
            f"{status_badge(m.status)} {esc(m.error.name)} at {when(m.done_at)}</li>"
        )
    else:
        items.append(
            f'<li class="event waiting"><h3>In progress</h3><p>step {j.step_index + 1}, try {j.tries}, '
            f"{esc(j.phase.lower())} until {when(j.step_deadline)}; "
            f"next action {when(j.next_action_at)}</p></li>"
        )
    reports = "".join(
        f'<li class="event report" data-kind="{esc(r.kind)}" data-state="{esc(r.state)}">'
        f"<h3>{esc(r.kind.title())} report</h3>"
        + _dl(
            [
                ("Created", when(r.created_at)),
                (
                    "Delivery",
                    esc(
                        {"PUSH": "to be pushed", "PULL": "to be pulled", "DONE": "done"}.get(r.state, r.state)
                    ),
                ),
                ("Notify URL", esc(r.notify_url or "— (pulled with GET …/reports)")),
                ("Push tries", esc(r.push_tries)),
                ("Next push", when(r.next_push_at)),
            ]
        )
        + ("" if operator else f"<details><summary>Body</summary><pre>{esc(r.body)}</pre></details>")
        + "</li>"
        for r in j.reports
    )
    return (
        f'<section class="summary">{_dl(summary)}</section>'
        f'<h2>Journey</h2><ol class="timeline" id="timeline">{"".join(items)}{reports}</ol>'
    )
