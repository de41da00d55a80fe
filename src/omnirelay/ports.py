"""Ports: the small Protocols services depend on; adapters in store/ and channels/ implement them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from omnirelay.domain.messages import Channel, Outbound, Receipt
from omnirelay.domain.statuses import Status


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


@dataclass(frozen=True, slots=True)
class Accepted:
    """A channel took the message.

    `status` is the in-flight status (PENDING_WAITING_DELIVERY for Messenger, PENDING_ENROUTE for
    SMS) or, when no receipt will ever come (a Messenger sender action), the final status.
    `refs` are the channel's ids for what was sent: one Graph message id, or one SMSC message id
    per SMS segment; receipts name them.
    """

    refs: tuple[str, ...]
    status: Status
    message_count: int = 1


class ChannelSender(Protocol):
    """Sends one attempt on one channel.

    Returns `Accepted`, or raises `ChannelUnavailable` (retry later) or `MessageRejected`
    (permanent: fail over). Nothing else escapes an adapter.
    """

    channel: Channel

    async def send(self, outbound: Outbound) -> Accepted: ...


class ReceiptSink(Protocol):
    """Where channel adapters hand receipts. Returns once they are durably stored, so the
    adapter may then acknowledge them to the channel (SMPP deliver_sm_resp, webhook 200)."""

    async def record(self, receipts: Sequence[Receipt]) -> None: ...


@dataclass(frozen=True, slots=True)
class MessengerApplication:
    key: str
    account_id: int
    name: str
    page_id: str
    page_access_token: str = field(repr=False)
    app_secret: str = field(repr=False)
    verify_token: str = field(repr=False)
    webhook_url: str | None = None


@dataclass(frozen=True, slots=True)
class MessengerUser:
    user_key: str
    application_key: str
    psid: str
    phone_number: str | None = None


class MessengerDirectory(Protocol):
    """Messenger applications and their users, as the Graph sender needs them."""

    async def application(self, key: str) -> MessengerApplication | None: ...

    async def user(self, application_key: str, user_key: str) -> MessengerUser | None: ...

    async def user_by_phone(self, application_key: str, phone_number: str) -> MessengerUser | None: ...
