"""The dispatcher: claim due messages, send the current step, apply the outcome.

Channel-agnostic: it knows channels only as `ChannelSender`s. Message state lives in the store;
this loop keeps nothing that a restart could lose. A claim is a lease: if this process dies
mid-send, the message becomes due again when the lease runs out and another loop resends it
(at-least-once; the window is one send per crash).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta

import msgspec

from omnirelay.domain.errors import ChannelUnavailable, MessageRejected
from omnirelay.domain.failover import (
    Abandoned,
    DeadlineReached,
    Outcome,
    Phase,
    RetryPolicy,
    SentOk,
    StepFailed,
    TransientFailure,
)
from omnirelay.domain.messages import Channel, Outbound
from omnirelay.domain.statuses import (
    EC_NOTSUBMITTEDTOSMPPCHANNEL,
    EC_PROCESSING_FAILED,
    REJECTED_ROUTE_NOT_AVAILABLE,
    REJECTED_SYSTEM_ERROR,
)
from omnirelay.ports import (
    NO_METRICS,
    Accepted,
    ChannelSender,
    Clock,
    MessageRecord,
    MessageStore,
    Metrics,
    PriceList,
    Transition,
)
from omnirelay.services import transitions
from omnirelay.services.rounds import run_rounds
from omnirelay.services.transitions import transition_for

log = logging.getLogger(__name__)

RECORD_RETRY_S = (0.05, 0.25, 1.0)  # pauses between writes of an accepted send that failed


class Dispatcher:
    """Claims only what it can start at once: a concurrency slot is taken before the claim, so no
    lease runs while its message waits for a slot. Each claim gives the send a deadline inside the
    lease (`lease_s` from before the claim, less the time kept for writing the outcome): a send
    never starts, and never goes on, on a lease about to end. `stop` stops claiming, lets the
    sends under way finish and write their outcomes, and only then returns (docs/architecture.md,
    "Claims and leases" and "Stopping")."""

    def __init__(
        self,
        store: MessageStore,
        senders: Mapping[Channel, ChannelSender],
        clock: Clock,
        *,
        owner: str,
        policy: RetryPolicy | None = None,
        lease_s: float = 60.0,
        batch: int = 500,
        concurrency: int = 1000,
        idle_poll_s: float = 0.25,
        max_claims: int = 5,
        prices: PriceList | None = None,
        metrics: Metrics = NO_METRICS,
        skip_channels: Callable[[], Sequence[Channel]] = tuple,
    ) -> None:
        self._store = store
        # channels this node cannot send on now (no SMPP bind here: docs/architecture.md#smpp-binds)
        self._skip_channels = skip_channels
        self._metrics = metrics
        self._senders = senders  # shared: channels may be added after the dispatcher is built
        self._clock = clock
        self._owner = owner
        self._policy = policy or RetryPolicy()
        self._lease_s = lease_s
        # the part of a lease kept for writing the outcome once the send has answered
        self._write_margin_s = lease_s * 0.25
        self._batch = batch
        self._concurrency = concurrency
        self._free = concurrency  # concurrency slots not taken by a claimed message
        self._changes = 0  # claims that took messages, and messages finished with (`activity`)
        # a slot freed while none was left wakes the loop only once a batch's worth is free again
        # (a claim per freed slot would queue a claim behind the writer for every message)
        self._refill = max(1, min(batch, concurrency) // 4)
        self._starved = False
        self._idle_poll_s = idle_poll_s
        self._max_claims = max_claims
        self._prices = prices  # in memory: reports get their price without a database read
        self._wake = asyncio.Event()
        self._inflight: dict[int, asyncio.Task[None]] = {}  # by message pk
        self._stopping = False

    def wake(self) -> None:
        """New work was committed: look now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Claim and start work until `stop` (or cancellation)."""
        await run_rounds("dispatcher", self._round, self._wake, self._idle_poll_s, lambda: self._stopping)

    async def _round(self) -> float:
        if self._free == 0:
            self._starved = True
            return self._idle_poll_s  # a freed batch of slots wakes the loop
        wanted = min(self._batch, self._free)
        claimed = await self.run_once(wait=False)
        return await self._idle_s() if claimed < wanted else 0.0

    async def _idle_s(self) -> float:
        """How long to sleep when nothing is due: until the next deadline, retry or lease expiry
        (so expiry fails over on time, not at the next poll), at most `idle_poll_s`."""
        due = await self._store.next_due_at()
        if due is None:
            return self._idle_poll_s
        return min(self._idle_poll_s, max((due - self._clock.now()).total_seconds(), 0.005))

    async def run_once(self, *, wait: bool = True) -> int:
        """Claim as many due messages as there are free slots (at most a batch) and start them;
        `wait` for them to finish. Returns how many were claimed."""
        wanted = min(self._batch, self._free)
        if wanted <= 0 or self._stopping:
            return 0
        self._free -= wanted  # taken before the claim: what is claimed starts at once
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._lease_s  # the lease, measured from before it was taken
        try:
            records = await self._store.claim_due(
                self._clock.now(),
                self._owner,
                self._lease_s,
                wanted,
                exclude=tuple(self._inflight),
                skip_channels=[c.value for c in self._skip_channels()],
            )
        except BaseException:
            self._free += wanted
            raise
        self._free += wanted - len(records)
        if records:
            self._changes += 1
        tasks = []
        for record in records:
            task = asyncio.create_task(self._process(record, deadline))
            self._inflight[record.pk] = task
            task.add_done_callback(functools.partial(self._done, record.pk))
            tasks.append(task)
        if wait and tasks:
            await asyncio.gather(*tasks)
        return len(records)

    def _done(self, pk: int, task: asyncio.Task[None]) -> None:
        if self._inflight.get(pk) is task:
            del self._inflight[pk]
        self._free += 1
        self._changes += 1
        if self._starved and self._free >= self._refill:
            self._starved = False
            self._wake.set()

    @property
    def in_flight(self) -> int:
        """Messages claimed by this dispatcher and not yet finished with."""
        return len(self._inflight)

    @property
    def activity(self) -> tuple[bool, int]:
        """Whether a claim or a send is under way, and a count that moves whenever one took messages
        or ended: two equal readings with nothing under way in either mean nothing ran in between
        (`Gateway.until_idle`)."""
        return self._free < self._concurrency, self._changes

    async def stop(self, grace_s: float) -> None:
        """Claim nothing more; give the sends under way `grace_s` to finish and write their
        outcomes. What is still running then is cancelled: those messages are sent again after
        their lease runs out, as after a crash (docs/architecture.md, "Stopping")."""
        self._stopping = True
        self._wake.set()
        pending = set(self._inflight.values())
        if pending:
            log.info("stopping: waiting up to %.1f s for %d sends under way", grace_s, len(pending))
            _, late = await asyncio.wait(pending, timeout=grace_s)
            if late:
                log.warning("%d sends still running after %.1f s; cancelled", len(late), grace_s)
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)

    async def drain(self) -> None:
        """Wait for every claimed message to be finished with (tests, `stop`)."""
        while self._inflight:
            await asyncio.gather(*self._inflight.values(), return_exceptions=True)

    async def _process(self, record: MessageRecord, deadline: float) -> None:
        """Send the claimed message's current step and apply the outcome. When that outcome makes
        the next step due at once (a rejection, a failure or an expiry failing over), go on with it
        here, under the same claim: the failover is committed (keeping the lease) and the next step
        sent without a second claim, which would queue behind the writer's other work and wait for
        a dispatcher round."""
        for _ in range(len(record.plan)):  # each pass moves to a later step: bounded by the plan
            chained = await self._step(record, deadline)
            if chained is None:
                return
            record = chained

    async def _step(self, record: MessageRecord, deadline: float) -> MessageRecord | None:
        """One outcome of `record`'s current step; the record to go on with, if any."""
        loop = asyncio.get_running_loop()
        try:
            outcome, accepted, why = await self._outcome(record, deadline)
            now = self._clock.now()
            # a parked message is not charged (and its price may be what kept failing)
            prices = None if isinstance(outcome, Abandoned) else self._prices
            transition = transition_for(
                record, outcome, now, accepted=accepted, policy=self._policy, prices=prices
            )
            decision = transition.decision
            if decision.ignored:
                log.warning(
                    "outcome %s ignored", type(outcome).__name__, extra={"message_id": record.message_id}
                )
            next_at = decision.state.next_action_at
            # going on under this claim needs a send's worth of its lease left; else the next step is
            # committed due now and claimed afresh, with a whole lease
            left_s = deadline - loop.time() - self._write_margin_s
            chain = (
                not decision.ignored
                and decision.step_ended is not None
                and decision.final is None
                and next_at is not None
                and next_at <= now
                and left_s >= self._lease_s * 0.25
            )
            if chain:
                transition = msgspec.structs.replace(transition, lease_until=now + timedelta(seconds=left_s))
            applied = await self._apply(record, transition)
            if applied and not chain and next_at is not None and next_at <= transition.now:
                self._wake.set()  # a retry due now: claimed at once, not at the next poll
            if applied:
                transitions.count(self._metrics, transition)
            self._log_outcome(record, transition, applied, why)
        except Exception:
            # The lease will run out and the message will be claimed again: nothing is lost.
            log.exception("processing failed", extra={"message_id": record.message_id})
            return None
        return transitions.record_after(transition) if applied and chain else None

    async def _apply(self, record: MessageRecord, transition: Transition) -> bool:
        """Write the transition. A send the channel accepted must be recorded, not sent again: its
        write is retried, and if it still fails the send is recorded without its refs (the step then
        waits for its deadline; a receipt finds nothing to match) rather than left to the lease,
        whose expiry would send it again and fail the same way again."""
        accepted = transition.accepted
        if accepted is None:
            (applied,) = await self._store.apply([transition], self._owner)
            return applied
        for pause_s in RECORD_RETRY_S:
            try:
                (applied,) = await self._store.apply([transition], self._owner)
                return applied
            except Exception:  # any write failure: the channel has the message, keep trying to record it
                log.warning(
                    "recording an accepted send failed; retrying in %g s",
                    pause_s,
                    exc_info=True,
                    extra={"message_id": record.message_id},
                )
                await asyncio.sleep(pause_s)
        try:
            (applied,) = await self._store.apply([transition], self._owner)
            return applied
        except Exception:
            bare = msgspec.structs.replace(transition, accepted=msgspec.structs.replace(accepted, refs=()))
            (applied,) = await self._store.apply([bare], self._owner)
            log.error(
                "accepted send recorded without its refs %s after failures to record them: "
                "its receipts will match nothing",
                list(accepted.refs),
                exc_info=True,
                extra={"message_id": record.message_id},
            )
            return applied

    @staticmethod
    def _log_outcome(record: MessageRecord, transition: Transition, applied: bool, why: str | None) -> None:
        """One INFO line per outcome that ends a step or has a reason (a transient failure), with the
        channel's reason (end to end, log lines were ~6 % of the gateway's CPU: one line, not two,
        per rejection). A send accepted and now waiting for its receipt logs nothing here."""
        reason = f": {why}" if why else ""
        extra = {"message_id": record.message_id}
        decision = transition.decision
        if not applied:
            log.info("state changed meanwhile; outcome dropped%s", reason, extra=extra)
        elif decision.final is not None:
            final = decision.final
            log.info("final %s on step %d%s", final.status.name, final.step_index, reason, extra=extra)
        elif decision.step_ended is not None:
            ended = decision.step_ended
            channel = record.plan[ended.step_index].channel
            log.info(
                "step %d (%s) failed (%s%s); failing over",
                ended.step_index,
                channel,
                ended.status.name,
                reason,
                extra=extra,
            )
        elif why is not None:
            log.info("%s: %s", record.plan[record.state.step_index].channel, why, extra=extra)

    async def _outcome(
        self, record: MessageRecord, deadline: float
    ) -> tuple[Outcome, Accepted | None, str | None]:
        """The step's outcome, what the channel accepted, and why it did not (logged by `_step`)."""
        state = record.state
        now = self._clock.now()
        if record.claims > self._max_claims:
            # claimed that often without an outcome written: sending it again would most likely
            # send it again and fail again, every lease until its validity ends (a poison message)
            self._metrics.send_error(record.plan[state.step_index].channel.value, "abandoned")
            log.error(
                "message claimed %d times without an outcome; abandoned",
                record.claims,
                extra={"message_id": record.message_id},
            )
            return (
                Abandoned(REJECTED_SYSTEM_ERROR, EC_PROCESSING_FAILED),
                None,
                f"claimed {record.claims} times without an outcome",
            )
        if state.phase is Phase.WAITING or now >= state.step_deadline:
            return DeadlineReached(), None, None
        step = record.plan[state.step_index]
        sender = self._senders.get(step.channel)
        if sender is None:
            return (
                StepFailed(REJECTED_ROUTE_NOT_AVAILABLE, EC_NOTSUBMITTEDTOSMPPCHANNEL),
                None,
                f"no {step.channel} sender",
            )
        outbound = Outbound(
            message_id=record.message_id,
            account_id=record.account_id,
            channel=step.channel,
            sender=step.sender,
            to=step.to,
            to_kind=step.to_kind,
            content=step.content,
            expires_at=state.step_deadline,
            criterion=step.criterion,
        )
        # A send must end inside the lease with time left to write its outcome, or another claim
        # could send the message again while this one is still under way.
        budget_s = deadline - asyncio.get_running_loop().time() - self._write_margin_s
        if budget_s <= 0:
            return TransientFailure("lease too short to send"), None, "lease too short to send"
        try:
            async with asyncio.timeout(budget_s):
                accepted = await sender.send(outbound)
        except TimeoutError:
            self._metrics.send_error(step.channel.value, "unavailable")
            log.warning(
                "%s send timed out; will retry", step.channel, extra={"message_id": record.message_id}
            )
            return TransientFailure("send timed out"), None, None
        except ChannelUnavailable as exc:
            self._metrics.send_error(step.channel.value, "unavailable")
            outcome = TransientFailure(exc.reason, exc.retry_after_s, spends_try=not exc.paused)
            return outcome, None, f"unavailable: {exc.reason}"
        except MessageRejected as exc:
            self._metrics.send_error(step.channel.value, "rejected")
            return StepFailed(exc.status, exc.error), None, f"rejected: {exc.reason}"
        except Exception as exc:
            self._metrics.send_error(step.channel.value, "unavailable")
            log.exception(
                "%s sender failed unexpectedly", step.channel, extra={"message_id": record.message_id}
            )
            return TransientFailure(f"sender error: {type(exc).__name__}"), None, None
        return SentOk(accepted.status), accepted, None
