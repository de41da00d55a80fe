"""The failover state machine: examples, then hypothesis properties of its invariants."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omnirelay.domain import failover
from omnirelay.domain.failover import (
    DeadlineReached,
    Delivered,
    Phase,
    PlannedStep,
    RetryPolicy,
    SentOk,
    StepFailed,
    TransientFailure,
)
from omnirelay.domain.messages import (
    AddressKind,
    Channel,
    FacebookContent,
    FacebookKind,
    SmsContent,
    SuccessCriterion,
)
from omnirelay.domain.statuses import (
    DELIVERED_TO_HANDSET,
    DELIVERED_TO_OPERATOR,
    EC_ABSENT_SUBSCRIBER_SM,
    EC_NO_SESSION,
    EXPIRED_EXPIRED,
    PENDING_ENROUTE,
    PENDING_WAITING_DELIVERY,
    UNDELIVERABLE_NOT_DELIVERED,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FB = PlannedStep(
    Channel.FACEBOOK,
    "APP",
    "u",
    AddressKind.USER_KEY,
    120,
    facebook=FacebookContent(FacebookKind.TEXT, text="x"),
)
SMS = PlannedStep(Channel.SMS, "InfoSMS", "41793026727", AddressKind.PHONE, 600, sms=SmsContent("x"))
PLAN = (FB, SMS)
C = SuccessCriterion


def test_rejection_fails_over_at_once_and_last_failure_is_final():
    s = failover.start(PLAN, T0)
    d = failover.advance(PLAN, s, StepFailed(UNDELIVERABLE_NOT_DELIVERED, EC_NO_SESSION), T0)
    assert d.step_ended is not None and d.final is None
    assert d.state.step_index == 1 and d.state.phase is Phase.READY and d.state.next_action_at == T0
    assert d.state.step_deadline == T0 + timedelta(seconds=600)
    d2 = failover.advance(PLAN, d.state, StepFailed(UNDELIVERABLE_NOT_DELIVERED, EC_ABSENT_SUBSCRIBER_SM), T0)
    assert d2.final is not None and d2.final.step_index == 1 and d2.final.error is EC_ABSENT_SUBSCRIBER_SM
    assert d2.state.phase is Phase.DONE


def test_sent_then_delivered():
    s = failover.advance(PLAN, failover.start(PLAN, T0), SentOk(PENDING_WAITING_DELIVERY), T0).state
    assert s.phase is Phase.WAITING and s.next_action_at == s.step_deadline
    d = failover.advance(PLAN, s, Delivered(DELIVERED_TO_HANDSET), T0 + timedelta(seconds=1))
    assert d.final is not None and d.final.status is DELIVERED_TO_HANDSET and d.final.step_index == 0


def test_final_status_at_send_finishes_without_receipt():
    d = failover.advance(PLAN, failover.start(PLAN, T0), SentOk(DELIVERED_TO_OPERATOR), T0)
    assert d.final is not None and d.final.status is DELIVERED_TO_OPERATOR


def test_expiry_while_waiting_fails_over():
    s = failover.advance(PLAN, failover.start(PLAN, T0), SentOk(PENDING_WAITING_DELIVERY), T0).state
    early = failover.advance(PLAN, s, DeadlineReached(), T0 + timedelta(seconds=60))
    assert early.ignored
    d = failover.advance(PLAN, s, DeadlineReached(), T0 + timedelta(seconds=120))
    assert d.step_ended is not None and d.step_ended.status is EXPIRED_EXPIRED
    assert d.state.step_index == 1


def test_transient_failures_retry_with_backoff_inside_validity():
    s = failover.start(PLAN, T0)
    d = failover.advance(PLAN, s, TransientFailure("5xx"), T0, policy=RetryPolicy(base_s=1), jitter=0.999)
    assert d.state.step_index == 0 and d.state.tries == 1
    assert d.state.next_action_at is not None and T0 < d.state.next_action_at <= T0 + timedelta(seconds=1)
    # a retry-after longer than the remaining validity gives up on the step now
    d2 = failover.advance(PLAN, d.state, TransientFailure("throttled", retry_after_s=500), T0)
    assert d2.step_ended is not None and d2.step_ended.status is EXPIRED_EXPIRED and d2.state.step_index == 1


def test_a_paused_sender_retries_at_its_pause_end_without_spending_a_try():
    s = failover.start(PLAN, T0)
    tried = failover.advance(PLAN, s, TransientFailure("5xx"), T0, jitter=0.5)
    assert tried.state.tries == 1
    paused = TransientFailure("bind paused", retry_after_s=0.7, spends_try=False)
    for _ in range(20):  # however often the bind is paused meanwhile
        d = failover.advance(PLAN, tried.state, paused, T0, jitter=0.999)
        assert d.state.tries == 1 and d.state.next_action_at == T0 + timedelta(seconds=0.7)
    # still bounded by the step's validity
    late = failover.advance(PLAN, s, TransientFailure("paused", 500, spends_try=False), T0)
    assert late.step_ended is not None and late.step_ended.status is EXPIRED_EXPIRED


def test_scheduled_start_and_validity_clamp():
    s = failover.start(PLAN, T0, T0 + timedelta(hours=1))
    assert s.next_action_at == T0 + timedelta(hours=1)
    assert failover.clamp_validity_s(1) == 30 and failover.clamp_validity_s(10**9) == 48 * 3600


def test_outcomes_after_the_end_are_ignored():
    done = failover.advance(PLAN, failover.start(PLAN, T0), SentOk(DELIVERED_TO_OPERATOR), T0).state
    assert failover.advance(PLAN, done, Delivered(DELIVERED_TO_HANDSET), T0).ignored


# --- success criteria (docs/api.md#success-criteria): every criterion x outcome ---------------------

DELIVERY = Delivered(DELIVERED_TO_HANDSET)
READ = Delivered(DELIVERED_TO_HANDSET, seen=True)
FAILURE_RECEIPT = StepFailed(UNDELIVERABLE_NOT_DELIVERED, EC_ABSENT_SUBSCRIBER_SM)
REJECTION = StepFailed(UNDELIVERABLE_NOT_DELIVERED, EC_NO_SESSION)


def _with(criterion: SuccessCriterion) -> tuple[PlannedStep, PlannedStep]:
    return (replace(FB, criterion=criterion), SMS)


def _sent(plan: tuple[PlannedStep, ...]) -> failover.Decision:
    return failover.advance(plan, failover.start(plan, T0), SentOk(PENDING_WAITING_DELIVERY), T0)


def test_the_default_criterion_is_delivered():
    assert FB.criterion is C.DELIVERED


def test_accepted_ends_the_step_at_the_channels_acceptance():
    d = _sent(_with(C.ACCEPTED))
    assert d.final is not None and d.final.step_index == 0
    assert d.final.status is DELIVERED_TO_OPERATOR and d.final.status.is_success
    assert d.state.phase is Phase.DONE
    # a receipt afterwards changes nothing (the receipt processor records it on the attempt)
    assert failover.advance(_with(C.ACCEPTED), d.state, DELIVERY, T0).ignored


@pytest.mark.parametrize("criterion", list(SuccessCriterion))
def test_a_rejection_fails_over_whatever_the_criterion(criterion: SuccessCriterion):
    plan = _with(criterion)
    d = failover.advance(plan, failover.start(plan, T0), REJECTION, T0)
    assert d.step_ended is not None and d.final is None and d.state.step_index == 1


@pytest.mark.parametrize("criterion", list(SuccessCriterion))
def test_a_transient_failure_retries_whatever_the_criterion(criterion: SuccessCriterion):
    plan = _with(criterion)
    d = failover.advance(plan, failover.start(plan, T0), TransientFailure("5xx"), T0)
    assert d.step_ended is None and d.state.step_index == 0 and d.state.phase is Phase.READY


@pytest.mark.parametrize("criterion", [C.DELIVERED, C.SEEN])
def test_waiting_criteria_wait_after_acceptance(criterion: SuccessCriterion):
    d = _sent(_with(criterion))
    assert d.final is None and d.state.phase is Phase.WAITING


@pytest.mark.parametrize(
    ("criterion", "receipt", "met"),
    [
        (C.DELIVERED, DELIVERY, True),
        (C.DELIVERED, READ, True),  # a read says delivered as well
        (C.SEEN, READ, True),
        (C.SEEN, DELIVERY, False),  # progress only
    ],
)
def test_a_receipt_meets_the_criterion_or_is_progress(
    criterion: SuccessCriterion, receipt: Delivered, met: bool
):
    plan = _with(criterion)
    waiting = _sent(plan).state
    d = failover.advance(plan, waiting, receipt, T0 + timedelta(seconds=1))
    if met:
        assert d.final is not None and d.final.status is DELIVERED_TO_HANDSET and d.progress is None
    else:
        assert d.progress is not None and d.progress.status is DELIVERED_TO_HANDSET
        assert d.progress.step_index == 0
        assert d.state == waiting and d.step_ended is None and d.final is None and not d.ignored


def test_seen_after_progress_succeeds_and_missed_seen_expires_and_fails_over():
    plan = _with(C.SEEN)
    waiting = _sent(plan).state
    progressed = failover.advance(plan, waiting, DELIVERY, T0 + timedelta(seconds=1)).state
    read = failover.advance(plan, progressed, READ, T0 + timedelta(seconds=2))
    assert read.final is not None and read.final.step_index == 0
    expired = failover.advance(plan, progressed, DeadlineReached(), T0 + timedelta(seconds=120))
    assert expired.step_ended is not None and expired.step_ended.status is EXPIRED_EXPIRED
    assert expired.state.step_index == 1 and expired.final is None


@pytest.mark.parametrize("criterion", [C.DELIVERED, C.SEEN])
def test_a_failure_receipt_fails_over_while_waiting(criterion: SuccessCriterion):
    plan = _with(criterion)
    d = failover.advance(plan, _sent(plan).state, FAILURE_RECEIPT, T0 + timedelta(seconds=1))
    assert d.step_ended is not None and d.step_ended.error is EC_ABSENT_SUBSCRIBER_SM
    assert d.state.step_index == 1


@pytest.mark.parametrize("criterion", list(SuccessCriterion))
def test_a_final_status_at_send_ends_the_step_whatever_the_criterion(criterion: SuccessCriterion):
    """A sender action or a Messenger send by phone number: no receipt will come."""
    plan = _with(criterion)
    d = failover.advance(plan, failover.start(plan, T0), SentOk(DELIVERED_TO_OPERATOR), T0)
    assert d.final is not None and d.final.status is DELIVERED_TO_OPERATOR


outcomes = st.sampled_from(
    ["sent", "transient", "rejected", "delivered", "read", "failed_receipt", "deadline"]
)


@settings(max_examples=400, deadline=None)
@given(
    criteria=st.lists(st.sampled_from(list(SuccessCriterion)), min_size=4, max_size=4),
    n_steps=st.integers(1, 4),
    script=st.lists(st.tuples(outcomes, st.integers(0, 400), st.floats(0, 0.999)), max_size=60),
)
def test_invariants(criteria: list[SuccessCriterion], n_steps: int, script: list[tuple[str, int, float]]):
    plan = tuple(replace(PLAN[i % 2], criterion=criteria[i]) for i in range(n_steps))
    state = failover.start(plan, T0)
    now = T0
    finals = 0
    tried: list[int] = []  # step index of every send attempt, in order
    ended: list[int] = []
    accepted: set[int] = set()
    for kind, dt, jitter in script:
        now += timedelta(seconds=dt)
        before = state
        outcome = {
            "sent": SentOk(PENDING_ENROUTE),
            "transient": TransientFailure("x"),
            "rejected": StepFailed(UNDELIVERABLE_NOT_DELIVERED, EC_NO_SESSION),
            "delivered": DELIVERY,
            "read": READ,
            "failed_receipt": StepFailed(UNDELIVERABLE_NOT_DELIVERED, EC_ABSENT_SUBSCRIBER_SM),
            "deadline": DeadlineReached(),
        }[kind]
        d = failover.advance(plan, state, outcome, now, jitter=jitter)
        if before.phase is Phase.DONE:
            assert d.ignored and d.state == before
            continue
        if not d.ignored and kind in ("sent", "transient") and before.phase is Phase.READY:
            assert before.step_index not in accepted  # never sent again once the channel took it
            tried.append(before.step_index)
            if kind == "sent":
                accepted.add(before.step_index)
        criterion = plan[before.step_index].criterion
        if d.progress is not None:
            # only a delivery short of SEEN is progress, and it changes nothing but the record
            assert kind == "delivered" and criterion is C.SEEN and before.phase is Phase.WAITING
            assert d.state == before and d.step_ended is None and d.final is None
        if d.step_ended is not None and d.step_ended.status.is_success:
            # success only when the step's criterion is met
            if criterion is C.SEEN:
                assert kind == "read"
            elif criterion is C.DELIVERED:
                assert kind in ("delivered", "read")
            else:
                assert kind == "sent" and d.step_ended.status is DELIVERED_TO_OPERATOR
        if kind == "sent" and not d.ignored and criterion is C.ACCEPTED:
            assert d.final is not None and d.final.status.is_success  # acceptance is all it asks
        if d.step_ended is not None:
            assert d.step_ended.step_index == before.step_index  # results belong to the step that was current
            ended.append(before.step_index)
        if d.final is not None:
            finals += 1
            assert d.state.phase is Phase.DONE and d.state.next_action_at is None
            # the final outcome is the last step tried's, and a failure is final only on the last step
            assert d.final.step_index == before.step_index
            if not d.final.status.is_success:
                assert before.step_index == n_steps - 1
        # steps only move forward, one at a time, and never past the plan
        assert d.state.step_index in (before.step_index, before.step_index + 1)
        assert d.state.step_index < n_steps
        if d.state.step_index == before.step_index + 1:
            assert d.step_ended is not None and d.state.tries == 0 and d.state.phase is Phase.READY
        state = d.state
    assert finals <= 1
    assert ended == sorted(ended) and len(ended) == len(set(ended))  # each step ends once, in order
    assert tried == sorted(tried)  # steps tried in order; repeats are retries of the same step
    assert all(state.step_index >= i for i in tried)
