"""Receipts: the channels' word on accepted messages, applied through the failover engine.

Adapters hand receipts to `record` (the `ReceiptSink` port), which stores them durably in an
inbox and returns; only then may an adapter acknowledge them (SMPP deliver_sm_resp, webhook 200).
A separate loop matches inbox entries to the channel ids stored at send time. A receipt may
arrive before its send was recorded (an SMSC answers within milliseconds), so an unmatched
receipt is kept and matched again (every `retry_s`) for `unmatched_ttl_s` before it is dropped as
unknown, with a warning. Because matching goes through storage, any node can apply any receipt,
before or after a restart.

Refs repeat (SMSC ids are unique only among one SMSC's live messages; SMS refs are scoped by
connector): a ref names the newest send recorded with it. A receipt that says when the send it is
for was made (`Receipt.sent_after`) does not match a ref recorded before that: that row is an
earlier send's, the receipt's own send is not recorded yet, and the receipt waits as unmatched.

A receipt short of its step's criterion (a delivery when SEEN is asked) is progress: recorded on
the attempt, no transition; the step waits on for a read or its deadline. A read counts as a
delivery too.

A receipt for a step no longer waited on is late only if it arrived after the step ended; one
that arrived before (another part of a multipart SMS whose step its siblings ended in the same
batch) is consumed without a word. A late delivery or read for a step that had failed over is a
late success (docs/api.md#late-outcomes): it is recorded on its attempt and, when the message
asked for intermediate reports, pushed as one; the final report stays the one the flow decided.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from omnirelay.domain.failover import Delivered, Phase, StepFailed, StepResult
from omnirelay.domain.messages import Receipt
from omnirelay.ports import (
    NO_METRICS,
    Clock,
    InboxReceipt,
    MessageRecord,
    MessageStore,
    Metrics,
    NewReport,
    PriceList,
    ReceiptOutcome,
)
from omnirelay.services import reports, transitions
from omnirelay.services.activity import Activity
from omnirelay.services.rounds import run_rounds
from omnirelay.services.transitions import transition_for

log = logging.getLogger(__name__)


class ReceiptProcessor:
    def __init__(
        self,
        store: MessageStore,
        clock: Clock,
        *,
        unmatched_ttl_s: float = 600.0,
        retry_s: float = 0.5,
        batch: int = 500,
        idle_poll_s: float = 0.25,
        lease_s: float = 10.0,
        prices: PriceList | None = None,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._store = store
        # how long a claimed batch is this node's (docs/architecture.md#claims-and-leases): short,
        # since a batch takes well under a second and a dead node's receipts wait for it to run out
        self._lease_s = lease_s
        self._metrics = metrics
        self._clock = clock
        self._ttl = timedelta(seconds=unmatched_ttl_s)
        self._retry = timedelta(seconds=retry_s)
        self._batch = batch
        self._idle_poll_s = idle_poll_s
        self._prices = prices
        self._wake = asyncio.Event()
        self._stopping = False
        self._activity = Activity()

    async def record(self, receipts: Sequence[Receipt]) -> None:
        await self._store.record_receipts(receipts, self._clock.now())
        self._wake.set()

    @property
    def activity(self) -> tuple[bool, int]:
        """A round under way, and the count of changes (`services.activity`; `Gateway.until_idle`)."""
        return self._activity.reading

    async def run(self) -> None:
        await run_rounds("receipt", self._round, self._wake, self._idle_poll_s, lambda: self._stopping)

    async def stop(self, grace_s: float) -> None:
        """Finish the round under way, then end `run` (the supervisor waits `grace_s` for it)."""
        self._stopping = True
        self._wake.set()

    async def _round(self) -> float:
        return 0.0 if await self.run_once() >= self._batch else self._idle_poll_s

    async def run_once(self) -> int:
        with self._activity.round() as took_work:
            due = await self._store.due_receipts(self._clock.now(), self._batch, lease_s=self._lease_s)
            if not due:
                return 0
            took_work()
            outcomes = self._decide(due)
            settled = await self._store.settle_receipts(outcomes)
        for outcome, ok in zip(outcomes, settled, strict=True):
            if outcome.late:
                self._metrics.receipt("late")
                late = outcome.record
                if outcome.late_success and ok and late is not None and late.scenario_key is not None:
                    step = outcome.owner[1] if outcome.owner is not None else 0
                    channel = late.plan[step].channel.value
                    self._metrics.funnel(late.scenario_key, step, channel, "late_success")
            elif outcome.progress:
                self._metrics.receipt("progress")
            elif outcome.transition is not None and ok:
                self._metrics.receipt("applied")
                transitions.count(self._metrics, outcome.transition)
        return len(due)

    def _decide(self, due: list[InboxReceipt]) -> list[ReceiptOutcome]:
        now = self._clock.now()
        delivered_in_batch: dict[tuple[int, int], set[str]] = {}
        for item in due:
            if (
                item.record is not None
                and item.step_index is not None
                and item.receipt.status.is_success
                and not _earlier_send(item)
            ):
                delivered_in_batch.setdefault((item.record.pk, item.step_index), set()).add(item.receipt.ref)
        outcomes: list[ReceiptOutcome] = []
        transitioned: set[int] = set()
        late_successes: set[tuple[int, int]] = set()  # one per attempt: the parts of an SMS each come
        for item in due:
            receipt, record = item.receipt, item.record
            if record is not None and _earlier_send(item):
                record = None
            if record is None or item.step_index is None:
                if now - item.received_at > self._ttl:
                    log.warning("receipt for unknown %s id %s dropped", receipt.channel, receipt.ref)
                    outcomes.append(ReceiptOutcome(item.id))
                else:
                    outcomes.append(ReceiptOutcome(item.id, retry_at=now + self._retry))
                continue
            owner = (record.pk, item.step_index)
            current = record.state.phase is Phase.WAITING and record.state.step_index == item.step_index
            if not current:
                ended_at = item.step_ended_at
                if ended_at is not None and item.received_at <= ended_at:
                    outcomes.append(ReceiptOutcome(item.id, owner=owner))  # part of the outcome taken
                    continue
                outcomes.append(self._late(item, record, owner, late_successes, now))
                continue
            if record.pk in transitioned:
                outcomes.append(ReceiptOutcome(item.id, retry_at=now))  # re-read after this batch's write
                continue
            if receipt.status.is_success:
                covered = delivered_in_batch.get((record.pk, item.step_index), set())
                if item.undelivered_refs - covered - {receipt.ref}:
                    outcomes.append(ReceiptOutcome(item.id, owner=owner))  # more SMS parts to come
                    continue
                outcome: Delivered | StepFailed = Delivered(receipt.status, receipt.error, receipt.seen)
            else:
                outcome = StepFailed(receipt.status, receipt.error)
            transition = transition_for(record, outcome, now, prices=self._prices)
            if transition.decision.progress is not None:
                # short of the step's criterion: the attempt records it, the message keeps waiting
                outcomes.append(ReceiptOutcome(item.id, owner=owner, progress=True))
                continue
            transitioned.add(record.pk)
            outcomes.append(ReceiptOutcome(item.id, transition=transition, owner=owner))
        return outcomes

    def _late(
        self,
        item: InboxReceipt,
        record: MessageRecord,
        owner: tuple[int, int],
        late_successes: set[tuple[int, int]],
        now: datetime,
    ) -> ReceiptOutcome:
        """A receipt for a step that had ended: recorded on its attempt. A delivery or read for a
        step that failed over is a late success (the sender paid for both channels): counted, and
        pushed when asked, once per attempt (the parts of an SMS each send one)."""
        receipt, ended = item.receipt, item.step_ended_status
        success = (
            receipt.status.is_success
            and ended is not None
            and not ended.is_success
            and not item.step_late
            and owner not in late_successes
        )
        if success:
            late_successes.add(owner)
        log.info(
            "late receipt %s on step %d%s",
            receipt.status.name,
            owner[1],
            " (seen)" if receipt.seen else "",
            extra={"message_id": record.message_id},
        )
        late_reports: tuple[NewReport, ...] = ()
        if success and record.intermediate_report and record.notify and record.notify_url:
            result = StepResult(owner[1], receipt.status, receipt.error)
            report = reports.report_for(
                record, result, now, record.message_count, final=False, prices=self._prices
            )
            late_reports = (report,)
        return ReceiptOutcome(
            item.id, late=True, owner=owner, late_success=success, reports=late_reports, record=record
        )


def _earlier_send(item: InboxReceipt) -> bool:
    """The ref's row was recorded before the send this receipt says it is for was made."""
    sent_after = item.receipt.sent_after
    return sent_after is not None and (item.ref_sent_at is None or item.ref_sent_at < sent_after)
