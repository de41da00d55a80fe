"""Test doubles for the ports: a fake clock and an in-memory channel (never mocks of our code)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from omnirelay.domain.errors import ChannelUnavailable, MessageRejected
from omnirelay.domain.messages import Channel, Outbound, Receipt
from omnirelay.domain.statuses import PENDING_ENROUTE, ErrorCode, Status
from omnirelay.ports import Accepted


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@dataclass
class Script:
    """What the in-memory channel does with a send to one address, in order; the last repeats."""

    actions: list[str | tuple[Status, ErrorCode]] = field(default_factory=lambda: ["accept"])


class InMemoryChannel:
    """A `ChannelSender` that records sends and answers per address: accept, unavailable, or reject."""

    def __init__(self, channel: Channel, accepted_status: Status = PENDING_ENROUTE) -> None:
        self.channel = channel
        self.accepted_status = accepted_status
        self.started: list[Outbound] = []  # sends begun, answered or not
        self.sent: list[Outbound] = []
        self.scripts: dict[str, list[str | tuple[Status, ErrorCode]]] = {}
        self._counter = 0
        self.gate: asyncio.Event | None = None

    def script(self, to: str, *actions: str | tuple[Status, ErrorCode]) -> None:
        self.scripts[to] = list(actions)

    async def send(self, outbound: Outbound) -> Accepted:
        self.started.append(outbound)
        if self.gate is not None:
            await self.gate.wait()
        self.sent.append(outbound)
        actions = self.scripts.get(outbound.to, ["accept"])
        action = actions.pop(0) if len(actions) > 1 else actions[0]
        if action == "unavailable":
            raise ChannelUnavailable(reason="scripted outage")
        if isinstance(action, tuple):
            raise MessageRejected(status=action[0], error=action[1], reason="scripted rejection")
        self._counter += 1
        return Accepted(refs=(f"{self.channel.value.lower()}-{self._counter}",), status=self.accepted_status)

    def restart(self) -> None:
        """Number refs from 1 again, as an SMSC does after a restart."""
        self._counter = 0

    def refs_for(self, to: str) -> list[str]:
        return [f"{self.channel.value.lower()}-{i + 1}" for i, o in enumerate(self.sent) if o.to == to]


class InMemoryReceiptSink:
    def __init__(self) -> None:
        self.receipts: list[Receipt] = []

    async def record(self, receipts: Sequence[Receipt]) -> None:
        self.receipts.extend(receipts)
