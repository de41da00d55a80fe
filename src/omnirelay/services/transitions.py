"""From an outcome to a `Transition` the store can write: the failover decision plus the
status to show, the channel ids to remember and the reports to queue."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime

import msgspec

from omnirelay.domain import failover
from omnirelay.domain.failover import Outcome, Phase, RetryPolicy, StepResult
from omnirelay.domain.statuses import EC_TIME_OUT, EC_VALIDITY_EXPIRED, NO_ERROR, PENDING_ACCEPTED
from omnirelay.ports import Accepted, MessageRecord, Metrics, NewReport, PriceList, Transition
from omnirelay.services import reports


def transition_for(
    record: MessageRecord,
    outcome: Outcome,
    now: datetime,
    *,
    accepted: Accepted | None = None,
    policy: RetryPolicy = RetryPolicy(),  # noqa: B008 - immutable value
    prices: PriceList | None = None,
) -> Transition:
    decision = failover.advance(
        record.plan,
        record.state,
        outcome,
        now,
        policy=policy,
        jitter=random.random(),  # noqa: S311 - backoff jitter, not a secret
    )
    message_count = accepted.message_count if accepted is not None else record.message_count
    out: list[NewReport] = []
    if decision.final is not None:
        status, error = decision.final.status, decision.final.error
        out.append(reports.report_for(record, decision.final, now, message_count, final=True, prices=prices))
    elif decision.step_ended is not None:
        status, error = PENDING_ACCEPTED, NO_ERROR
        if record.intermediate_report and record.notify and record.notify_url:
            out.append(
                reports.report_for(
                    record, decision.step_ended, now, message_count, final=False, prices=prices
                )
            )
    elif accepted is not None:
        status, error = accepted.status, NO_ERROR
    else:
        status, error = PENDING_ACCEPTED, NO_ERROR
    return Transition(record, decision, now, status, error, accepted, tuple(out))


def record_after(transition: Transition) -> MessageRecord:
    """The message as `transition` wrote it (for a lease holder going on with its next step)."""
    record, state = transition.record, transition.decision.state
    if transition.lease_until is not None:
        state = replace(state, next_action_at=transition.lease_until)
    accepted = transition.accepted
    return msgspec.structs.replace(
        record,
        version=record.version + 1,
        claims=0,
        state=state,
        message_count=accepted.message_count if accepted is not None else record.message_count,
        sent_at=(record.sent_at or transition.now) if accepted is not None else record.sent_at,
    )


def count(metrics: Metrics, transition: Transition) -> None:
    """Count a written transition: a final status, or a failover to the next step; and, for a
    scenario's message, the funnel of the step it acted on."""
    decision, plan = transition.decision, transition.record.plan
    if decision.final is not None:
        metrics.final(plan[decision.final.step_index].channel.value, decision.final.status.group.name)
    elif decision.step_ended is not None:
        metrics.failover(plan[decision.step_ended.step_index].channel.value)
    scenario = transition.record.scenario_key
    if scenario is None:
        return
    record = transition.record
    index = record.state.step_index
    channel = plan[index].channel.value
    if transition.accepted is not None:
        metrics.funnel(scenario, index, channel, "sent")
    ended = decision.step_ended
    if ended is not None:
        metrics.funnel(
            scenario, index, channel, funnel_outcome(ended, sent=record.state.phase is Phase.WAITING)
        )


def funnel_outcome(ended: StepResult, *, sent: bool) -> str:
    """How a step ended, for the funnel: as `store.logs.SqlLogStore.funnel` reads it from attempts."""
    if ended.status.is_success:
        return "met"
    if ended.error in (EC_VALIDITY_EXPIRED, EC_TIME_OUT):  # the engine's own expiries
        return "failed_expired"
    return "failed_receipt" if sent else "failed_rejected"
