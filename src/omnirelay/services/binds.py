"""This node's SMPP binds (docs/architecture.md#smpp-binds): a connector's `binds` are slots for the
whole cluster, and a node binds a connector only while it holds one of them.

Every `heartbeat_s` the holder renews its slots' leases (database time), gives up those no longer
wanted (the connector removed or given fewer binds) after closing their binds, and takes a free slot
of every connector it does not bind yet (one per node). A slot whose holder died is free once its
lease, `lease_s`, has run out. A holder that cannot renew for half a lease closes its binds before
the lease can run out under them, so that no two nodes bind on one slot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from omnirelay.ports import BindSlotStore
from omnirelay.services.rounds import run_rounds

log = logging.getLogger(__name__)

Apply = Callable[[Mapping[str, int]], Awaitable[None]]  # the connectors to bind -> their binds


class BindHolder:
    def __init__(
        self,
        store: BindSlotStore,
        *,
        node_id: str,
        heartbeat_s: float,
        lease_s: float,
        apply: Apply,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._node_id = node_id
        self._heartbeat_s = heartbeat_s
        self._lease_s = lease_s
        self._apply = apply
        self._wanted: dict[str, int] = {}  # every connector configured -> its binds
        self._held: dict[str, int] = {}  # connectors bound here -> their binds
        self._monotonic = monotonic
        self._renewed_at = monotonic()
        self._wake = asyncio.Event()
        self._stopping = False
        self._lock = asyncio.Lock()  # one round at a time: the loop's, or one after a change

    @property
    def held(self) -> Mapping[str, int]:
        return dict(self._held)

    @property
    def configured(self) -> bool:
        """Whether any connector is configured (for this node to bind, or another)."""
        return bool(self._wanted)

    def configure(self, binds: Mapping[str, int]) -> None:
        """The connectors configured now and their binds, for the next round (`hold`)."""
        self._wanted = dict(binds)

    async def run(self) -> None:
        self._stopping = False
        await run_rounds("binds", self._round, self._wake, self._heartbeat_s, lambda: self._stopping)

    async def _round(self) -> float:
        await self.hold()  # a round that raises is logged, and the next comes a heartbeat later
        return self._heartbeat_s

    async def hold(self) -> None:
        """One round: renew, give up, take (see the module's docstring). When it fails and the
        leases were last renewed more than half a lease ago, this node's binds are closed."""
        async with self._lock:
            if self._stopping:
                return
            try:
                await self._hold()
            except Exception:
                if self._held and self._monotonic() - self._renewed_at > self._lease_s / 2:
                    log.warning(
                        "bind slots not renewed for %.1f s: closing this node's binds", self._lease_s / 2
                    )
                    await self._bind({})
                raise

    async def _hold(self) -> None:
        sent_at = self._monotonic()
        renewed = await self._store.renew(self._node_id, self._lease_s)
        self._renewed_at = sent_at  # the leases end no sooner than lease_s after this
        wanted = self._wanted
        keep = {c: wanted[c] for c, slot in renewed.items() if c in wanted and slot < wanted[c]}
        if set(self._held) - set(keep):  # lost or given up: closed before the slot is free
            await self._bind({c: n for c, n in self._held.items() if c in keep})
        if set(renewed) - set(keep):
            await self._store.release(self._node_id, set(renewed) - set(keep))
        await self._store.tidy(wanted)
        for connector, binds in wanted.items():
            if (
                connector not in keep
                and await self._store.take(self._node_id, connector, binds, self._lease_s) is not None
            ):
                keep[connector] = binds
        if keep != self._held:
            await self._bind(keep)

    async def _bind(self, held: dict[str, int]) -> None:
        if set(held) != set(self._held):
            log.info("SMPP binds held by this node: %s", ", ".join(sorted(held)) or "none")
        self._held = held
        await self._apply(dict(held))

    async def stop(self, grace_s: float) -> None:
        """Close this node's binds, then free their slots for other nodes at once."""
        self._stopping = True
        self._wake.set()
        async with self._lock:  # a round under way ends first
            await self._bind({})
        try:
            await self._store.release(self._node_id)
        except Exception:  # the slots come free when their leases run out
            log.warning("could not free this node's bind slots", exc_info=True)
