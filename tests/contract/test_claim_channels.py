"""A node that binds no SMPP connector leaves messages whose current step is SMS to the nodes that
do (docs/architecture.md#smpp-binds): `claim_due(skip_channels=...)`."""

from __future__ import annotations

import msgspec

from omnirelay.domain import failover
from omnirelay.store.messages import SqlMessageStore
from tests.contract.test_message_store import PLAN, new_message
from tests.doubles import FakeClock


async def test_a_claim_leaves_the_skipped_channels_to_other_nodes(
    store: SqlMessageStore, clock: FakeClock
) -> None:
    sms_plan = PLAN[1:]
    on_sms = msgspec.structs.replace(
        new_message(clock, "on-sms"), plan=sms_plan, state=failover.start(sms_plan, clock.now())
    )
    await store.insert_messages([new_message(clock, "on-messenger"), on_sms])
    taken = await store.claim_due(clock.now(), "no-bind", 30, 10, skip_channels=["SMS"])
    assert [r.message_id for r in taken] == ["on-messenger"]
    taken = await store.claim_due(clock.now(), "binds", 30, 10)
    assert [r.message_id for r in taken] == ["on-sms"]
