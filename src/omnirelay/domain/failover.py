"""The failover state machine (docs/api.md#failover): `advance(plan, state, outcome, now) -> Decision`.

A message carries a frozen plan: the scenario steps that apply to its destination and content,
in order. Its state is which step is current, whether that step is due to be sent (READY) or
sent and awaiting a receipt (WAITING), the step's validity deadline, and how often it was tried.

    READY ──send ok (pending)──► WAITING ──criterion met──► DONE (success)
      │  ▲                          │ ▲
      │  │                          │ └─delivered, SEEN asked: progress, state unchanged
      │  └─transient, retry at t    ├─failure receipt / deadline──► next step READY, or DONE (failure)
      │    (a paused sender: at its pause's end, tries untouched)
      ├─rejected──► next step READY, or DONE (failure)
      ├─send ok (final status, e.g. a sender action; or criterion ACCEPTED)──► DONE
      ├─deadline passed (or the next retry would pass it)──► next step READY, or DONE
      └─abandoned (the gateway kept failing to record it)──► DONE (failure), in any phase

Every function here is pure: time comes in as `now`, randomness as `jitter` in [0, 1).
A step's success criterion (docs/api.md#success-criteria) says which outcome ends it well:
ACCEPTED the channel's acceptance (DELIVERED_TO_OPERATOR), DELIVERED a delivery receipt, SEEN a
read receipt (`Delivered(seen=True)`); a delivery short of SEEN is `Decision.progress` and the step
keeps waiting.

Invariants (tested with hypothesis): steps are tried in order and none is skipped; a step is
sent again only as a retry of a transient failure (one that spends a try, or a paused sender,
which does not: the step deadline bounds both); a flow ends exactly once; the final outcome
is the result of the last step tried; a step ends in success only when its criterion is met.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from omnirelay.domain.messages import AddressKind, Channel, FacebookContent, SmsContent, SuccessCriterion
from omnirelay.domain.statuses import (
    DELIVERED_TO_OPERATOR,
    EC_TIME_OUT,
    EC_VALIDITY_EXPIRED,
    EXPIRED_EXPIRED,
    NO_ERROR,
    ErrorCode,
    Status,
)

MIN_VALIDITY_S = 30
MAX_VALIDITY_S = 48 * 3600


def clamp_validity_s(seconds: float) -> int:
    """docs/api.md#validity-periods: validity is clamped to [30 s, 48 h]."""
    return int(min(max(seconds, MIN_VALIDITY_S), MAX_VALIDITY_S))


class Phase(StrEnum):
    READY = "READY"  # the current step is due to be sent at `next_action_at`
    WAITING = "WAITING"  # sent; waiting for a receipt until the step deadline
    DONE = "DONE"


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """A scenario step frozen into a message: channel, sender, the address and content it uses."""

    channel: Channel
    sender: str
    to: str
    to_kind: AddressKind
    validity_s: int
    facebook: FacebookContent | None = None
    sms: SmsContent | None = None
    # last, with its default: plans stored before criteria existed decode as DELIVERED
    criterion: SuccessCriterion = SuccessCriterion.DELIVERED

    @property
    def content(self) -> FacebookContent | SmsContent:
        content = self.facebook if self.channel is Channel.FACEBOOK else self.sms
        if content is None:
            raise ValueError(f"step on {self.channel} has no content")
        return content


@dataclass(frozen=True, slots=True)
class FlowState:
    step_index: int
    phase: Phase
    tries: int  # send tries of the current step
    step_deadline: datetime
    next_action_at: datetime | None  # None once DONE


@dataclass(frozen=True, slots=True)
class SentOk:
    """The channel accepted the send; `status` is pending, or final when no receipt will come."""

    status: Status


@dataclass(frozen=True, slots=True)
class TransientFailure:
    reason: str
    retry_after_s: float | None = None
    # False when the channel held the send back as a whole (a paused connector): the message is
    # retried at `retry_after_s` with its tries and backoff untouched.
    spends_try: bool = True


@dataclass(frozen=True, slots=True)
class StepFailed:
    """A permanent rejection at send time, or a failure receipt."""

    status: Status
    error: ErrorCode


@dataclass(frozen=True, slots=True)
class Delivered:
    """A delivery receipt; `seen`: a read receipt (which says delivered as well)."""

    status: Status
    error: ErrorCode = NO_ERROR
    seen: bool = False


@dataclass(frozen=True, slots=True)
class DeadlineReached:
    pass


@dataclass(frozen=True, slots=True)
class Abandoned:
    """The gateway itself kept failing on this message (claimed again and again without an outcome
    written): the flow ends with this result, with no further send and no failover, since the
    failure is the gateway's and another channel would fail alike."""

    status: Status
    error: ErrorCode


Outcome = SentOk | TransientFailure | StepFailed | Delivered | DeadlineReached | Abandoned


@dataclass(frozen=True, slots=True)
class StepResult:
    step_index: int
    status: Status
    error: ErrorCode


@dataclass(frozen=True, slots=True)
class Decision:
    state: FlowState
    step_ended: StepResult | None = None  # the current step ended (delivered or failed)
    final: StepResult | None = None  # the whole flow ended with this result
    ignored: bool = False  # the outcome did not apply (flow already done, or stale)
    # a receipt short of the step's criterion (delivered, SEEN asked): recorded, the step waits on
    progress: StepResult | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter for transient failures, within the step's validity."""

    base_s: float = 1.0
    factor: float = 2.0
    max_s: float = 300.0
    max_tries: int = 10

    def delay_s(self, tries: int, jitter: float, retry_after_s: float | None = None) -> float:
        backoff = min(self.base_s * self.factor ** max(tries - 1, 0), self.max_s)
        backoff = backoff * (0.5 + jitter / 2)  # "equal jitter": between half and all of it
        return max(backoff, retry_after_s or 0.0)


def start(plan: tuple[PlannedStep, ...], now: datetime, send_at: datetime | None = None) -> FlowState:
    """The state of a new message: its first step is due at `send_at` (or now)."""
    if not plan:
        raise ValueError("a flow needs at least one step")
    at = send_at if send_at is not None and send_at > now else now
    return FlowState(0, Phase.READY, 0, at + timedelta(seconds=plan[0].validity_s), at)


def advance(
    plan: tuple[PlannedStep, ...],
    state: FlowState,
    outcome: Outcome,
    now: datetime,
    *,
    policy: RetryPolicy = RetryPolicy(),
    jitter: float = 0.0,
) -> Decision:
    if state.phase is Phase.DONE:
        return Decision(state, ignored=True)
    match outcome:
        case SentOk(status=status):
            if state.phase is not Phase.READY:
                return Decision(state, ignored=True)
            if status.is_final:
                result = StepResult(state.step_index, status, NO_ERROR)
                return _finish(state, result)
            if plan[state.step_index].criterion is SuccessCriterion.ACCEPTED:
                # the channel has it, which is all this step asks: what a platform's acceptance means
                return _finish(state, StepResult(state.step_index, DELIVERED_TO_OPERATOR, NO_ERROR))
            waiting = replace(
                state, phase=Phase.WAITING, tries=state.tries + 1, next_action_at=state.step_deadline
            )
            return Decision(waiting)
        case TransientFailure(retry_after_s=retry_after_s, spends_try=False):
            if state.phase is not Phase.READY:
                return Decision(state, ignored=True)
            at = now + timedelta(seconds=retry_after_s or policy.base_s)
            if at >= state.step_deadline:
                return _step_failed(
                    plan, state, StepResult(state.step_index, EXPIRED_EXPIRED, EC_TIME_OUT), now
                )
            return Decision(replace(state, next_action_at=at))
        case TransientFailure(retry_after_s=retry_after_s):
            if state.phase is not Phase.READY:
                return Decision(state, ignored=True)
            tries = state.tries + 1
            at = now + timedelta(seconds=policy.delay_s(tries, jitter, retry_after_s))
            if tries >= policy.max_tries or at >= state.step_deadline:
                return _step_failed(
                    plan, state, StepResult(state.step_index, EXPIRED_EXPIRED, EC_TIME_OUT), now
                )
            return Decision(replace(state, tries=tries, next_action_at=at))
        case StepFailed(status=status, error=error):
            return _step_failed(plan, state, StepResult(state.step_index, status, error), now)
        case Delivered(status=status, error=error, seen=seen):
            if state.phase is not Phase.WAITING:
                return Decision(state, ignored=True)
            result = StepResult(state.step_index, status, error)
            if plan[state.step_index].criterion is SuccessCriterion.SEEN and not seen:
                return Decision(state, progress=result)
            return _finish(state, result)
        case DeadlineReached():
            if now < state.step_deadline:
                return Decision(state, ignored=True)
            result = StepResult(state.step_index, EXPIRED_EXPIRED, EC_VALIDITY_EXPIRED)
            return _step_failed(plan, state, result, now)
        case Abandoned(status=status, error=error):
            return _finish(state, StepResult(state.step_index, status, error))
    raise AssertionError(f"unknown outcome {outcome!r}")  # pragma: no cover


def _finish(state: FlowState, result: StepResult) -> Decision:
    done = replace(state, phase=Phase.DONE, next_action_at=None)
    return Decision(done, step_ended=result, final=result)


def _step_failed(
    plan: tuple[PlannedStep, ...], state: FlowState, result: StepResult, now: datetime
) -> Decision:
    nxt = state.step_index + 1
    if nxt >= len(plan):
        return _finish(state, result)
    deadline = now + timedelta(seconds=plan[nxt].validity_s)
    return Decision(FlowState(nxt, Phase.READY, 0, deadline, now), step_ended=result)
