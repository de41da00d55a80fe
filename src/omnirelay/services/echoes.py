"""Reconciling Messenger sends whose Graph API answer was lost, through Meta's echoes.

The Send API has no idempotency key: when a send times out or gets a 5xx, the message may have
gone out anyway, and the dispatcher schedules a retry. Every send carries our message id in
`metadata`, which Meta echoes back (`message_echoes`) with the message's `mid`. An echo for a
message whose Messenger step is still waiting to be retried proves the first send went out: the
step is recorded as accepted with that `mid` (so its delivery receipt completes it) and the retry,
which would have sent the message twice, does not happen.
"""

from __future__ import annotations

import logging

from omnirelay.domain.failover import Phase, SentOk
from omnirelay.domain.messages import Channel
from omnirelay.domain.statuses import PENDING_WAITING_DELIVERY
from omnirelay.ports import Accepted, Clock, MessageStore, PriceList
from omnirelay.services.transitions import transition_for

log = logging.getLogger(__name__)


class EchoReconciler:
    def __init__(self, store: MessageStore, clock: Clock, *, prices: PriceList | None = None) -> None:
        self._store = store
        self._clock = clock
        self._prices = prices

    async def echo(self, account_id: int, message_id: str, mid: str) -> bool:
        """True when the echo settled a send whose outcome was unknown."""
        record = await self._store.record_by_message_id(account_id, message_id)
        if record is None:
            return False
        state = record.state
        step = record.plan[state.step_index]
        if state.phase is not Phase.READY or step.channel is not Channel.FACEBOOK or state.tries == 0:
            return False  # the send's answer was recorded (or it was never tried): nothing to settle
        accepted = Accepted((mid,), PENDING_WAITING_DELIVERY)
        transition = transition_for(
            record, SentOk(accepted.status), self._clock.now(), accepted=accepted, prices=self._prices
        )
        (applied,) = await self._store.apply([transition], None)
        if applied:
            log.info(
                "echo %s settled a send whose answer was lost; no retry",
                mid,
                extra={"message_id": message_id},
            )
        return applied
