"""Ports: the small Protocols services depend on; adapters in store/ and channels/ implement them."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

import msgspec

from omnirelay.domain.connectors import SmppConnector, SmsRoute
from omnirelay.domain.failover import Decision, FlowState, PlannedStep
from omnirelay.domain.messages import AddressKind, Channel, Outbound, Receipt, SuccessCriterion
from omnirelay.domain.messenger_events import WebhookBatch
from omnirelay.domain.nodes import Node
from omnirelay.domain.prices import Price
from omnirelay.domain.scenarios import Scenario
from omnirelay.domain.statuses import ErrorCode, Status

R = TypeVar("R")


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class Accepted(msgspec.Struct, frozen=True):
    """A channel took the message.

    `status` is the in-flight status (PENDING_WAITING_DELIVERY for Messenger, PENDING_ENROUTE for
    SMS) or, when no receipt will ever come (a Messenger sender action, or a
    send by phone number, which Meta never confirms), the final status.
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


class AccountStore(Protocol):
    """Accounts, API key digests and IBSSO sessions (only digests and hashes are stored)."""

    async def account_by_username(self, username: str) -> tuple[int, str] | None: ...
    async def account_by_key_digest(self, key_digest: str) -> int | None: ...
    async def create_session(self, token_digest: str, account_id: int, now: datetime) -> None: ...
    async def session(self, token_digest: str) -> tuple[int, int] | None: ...
    async def touch_session(self, token_digest: str, now: datetime) -> None: ...
    async def delete_session(self, token_digest: str) -> None: ...


class MessengerDirectory(Protocol):
    """Messenger applications and their users, as the Graph sender needs them."""

    async def application(self, key: str) -> MessengerApplication | None: ...

    async def user(self, application_key: str, user_key: str) -> MessengerUser | None: ...

    async def user_by_phone(self, application_key: str, phone_number: str) -> MessengerUser | None: ...


# --- messages as the store keeps them -------------------------------------------------------


class Api(StrEnum):
    """Which API a message came in through: it decides where its report is pulled."""

    FACEBOOK = "FACEBOOK"
    OMNI = "OMNI"


class ReportState(StrEnum):
    PUSH = "PUSH"  # waiting to be pushed to notifyUrl
    PULL = "PULL"  # queued for GET .../reports
    DONE = "DONE"


class NewReport(msgspec.Struct, frozen=True):
    kind: str  # FINAL or INTERMEDIATE
    state: ReportState
    body: dict[str, Any] | msgspec.Raw  # Raw: already encoded JSON
    channel: str | None
    next_push_at: datetime | None = None


# The types built per message, on the send path and on every step and receipt, are msgspec Structs:
# a frozen Struct of 15 fields is built in ~0.8 µs on the bench machine, a frozen dataclass in ~9 µs.


class NewMessage(msgspec.Struct, frozen=True):
    account_id: int
    message_id: str
    bulk_id: str | None
    api: Api
    to: dict[str, Any]  # the request's `to`, echoed in the response
    plan: tuple[PlannedStep, ...]
    state: FlowState
    status: Status
    error: ErrorCode
    created_at: datetime
    text: str | None = None
    notify_url: str | None = None
    callback_data: str | None = None
    intermediate_report: bool = False
    notify: bool = True
    client_message_id: bool = False  # supplied by the client: check for duplicates
    final_report: NewReport | None = None  # rejected at acceptance: its one final report
    scenario_key: str | None = None  # OMNI: the scenario it goes through (the funnel's)


class MessageRecord(msgspec.Struct, frozen=True):
    pk: int
    version: int
    account_id: int
    message_id: str
    bulk_id: str | None
    api: Api
    plan: tuple[PlannedStep, ...]
    state: FlowState
    created_at: datetime
    sent_at: datetime | None
    message_count: int
    notify_url: str | None
    callback_data: str | None
    intermediate_report: bool
    notify: bool
    claims: int = 0  # claims since the last written outcome (a message failing after its send)
    scenario_key: str | None = None


class Transition(msgspec.Struct, frozen=True):
    """A decision of the failover engine, to be written if the message is still at `version`."""

    record: MessageRecord
    decision: Decision
    now: datetime
    status: Status
    error: ErrorCode
    accepted: Accepted | None = None
    reports: tuple[NewReport, ...] = ()
    # Set by a lease holder that goes on with the next step itself (a failover due now): the
    # message stays leased to it until then instead of becoming due for any claim.
    lease_until: datetime | None = None


class InboxReceipt(msgspec.Struct, frozen=True):
    """A stored receipt and, when its ref is known, the message and step it belongs to."""

    id: int
    receipt: Receipt
    received_at: datetime
    record: MessageRecord | None
    step_index: int | None
    undelivered_refs: frozenset[str]  # SMS: parts of the same attempt not yet delivered
    ref_sent_at: datetime | None = None  # when the send the ref names now was recorded
    step_ended_at: datetime | None = None  # set when that step is no longer being waited on
    step_ended_status: Status | None = None  # and the status it ended with
    step_late: bool = False  # and a late receipt was recorded on it already


class ReceiptOutcome(msgspec.Struct, frozen=True):
    inbox_id: int
    retry_at: datetime | None = None  # unmatched: look again then; None: done with it
    transition: Transition | None = None
    late: bool = False  # recorded on its attempt only
    progress: bool = False  # short of the step's criterion (delivered, SEEN asked): recorded, no transition
    late_success: bool = False  # late, a delivery or read for a step that had failed over
    # late: the intermediate report to queue with it (`intermediateReport`), and its message
    reports: tuple[NewReport, ...] = ()
    record: MessageRecord | None = None
    # (message pk, step) the receipt was matched to: its ref is marked delivered, its late receipt
    # recorded, only while the ref still names that send; None: matched to nothing
    owner: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class ReportFilter:
    bulk_id: str | None = None
    message_id: str | None = None
    channel: str | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class LogFilter:
    sender: str | None = None
    to: str | None = None
    bulk_ids: tuple[str, ...] = ()
    message_ids: tuple[str, ...] = ()
    status_ids: tuple[int, ...] | None = None
    channel: str | None = None
    sent_since: datetime | None = None
    sent_until: datetime | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class LogAttempt:
    channel: str
    to: str
    status: Status
    error: ErrorCode
    sent_at: datetime | None
    done_at: datetime | None
    late_status: Status | None = None
    late_at: datetime | None = None
    criterion: SuccessCriterion = SuccessCriterion.DELIVERED
    delivered_at: datetime | None = None  # a delivery short of the criterion (SEEN asked)
    seen_at: datetime | None = None  # a read, on time or late


@dataclass(frozen=True, slots=True)
class LogRow:
    message_id: str
    bulk_id: str | None
    to: str
    sender: str
    text: str | None
    created_at: datetime
    sent_at: datetime | None
    done_at: datetime | None
    message_count: int
    status: Status
    error: ErrorCode
    channel: str
    attempts: tuple[LogAttempt, ...] = ()


@dataclass(frozen=True, slots=True)
class FunnelRow:
    """One step of one scenario over a period, from the stored attempts (docs/api.md#analytics)."""

    scenario_key: str | None  # None: messages from before scenarios were recorded
    step_index: int
    channel: str
    sent: int
    met: int
    failed_rejected: int
    failed_receipt: int
    failed_expired: int
    late_success: int


class LogStore(Protocol):
    async def logs(self, account_id: int, api: Api, flt: LogFilter) -> list[LogRow]: ...

    async def funnel(self, account_id: int | None, since: datetime, until: datetime) -> list[FunnelRow]:
        """The steps of the account's OMNI messages accepted in [since, until); `account_id` None:
        every account's (the console's operator)."""
        ...


class MessageStore(Protocol):
    async def insert_messages(
        self, messages: Sequence[NewMessage], claim: IdempotencyClaim | None = None
    ) -> list[bool]:
        """Commit new messages in one go; False for a client message id already used. With a
        `claim`, its key and answer are kept in the same transaction; if another request has kept
        the key, nothing is inserted and `KeyClaimed` is raised."""
        ...

    async def claim_due(
        self,
        now: datetime,
        owner: str,
        lease_s: float,
        limit: int,
        *,
        exclude: Sequence[int] = (),
        skip_channels: Sequence[str] = (),
    ) -> list[MessageRecord]:
        """Lease up to `limit` due messages to `owner` for `lease_s` (database time), each with a
        fresh fencing token (`version`); `exclude`: message keys the caller is still working on;
        `skip_channels`: channels the caller cannot send on (their messages are other nodes')."""
        ...

    async def next_due_at(self) -> datetime | None:
        """When the earliest message becomes claimable (leases included); None when none waits."""
        ...

    async def apply(self, transitions: Sequence[Transition], owner: str | None) -> list[bool]:
        """Write transitions guarded by version (and lease owner); False where the guard failed."""
        ...

    async def record_receipts(self, receipts: Sequence[Receipt], now: datetime) -> None: ...

    async def due_receipts(self, now: datetime, limit: int, *, lease_s: float = 10.0) -> list[InboxReceipt]:
        """Claim up to `limit` due receipts for `lease_s` (database time), and what deciding them needs."""
        ...

    async def settle_receipts(self, outcomes: Sequence[ReceiptOutcome]) -> list[bool]: ...

    async def take_reports(self, account_id: int, api: Api, flt: ReportFilter) -> list[bytes]: ...

    async def record_by_message_id(self, account_id: int, message_id: str) -> MessageRecord | None: ...


# --- the console's reads (docs/console.md) -------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConsoleQuery:
    """A message search; every field narrows it. `before` is the keyset cursor: the
    (created_at ms, row id) of the last row of the previous page."""

    message_id: str | None = None
    bulk_id: str | None = None
    to: str | None = None
    status_ids: tuple[int, ...] | None = None
    channel: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before: tuple[int, int] | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class ConsoleMessage:
    pk: int
    account_id: int
    message_id: str
    bulk_id: str | None
    api: str
    to: str
    channel: str
    status: Status
    error: ErrorCode
    created_at: datetime
    done_at: datetime | None
    text: str | None
    cursor: tuple[int, int]


@dataclass(frozen=True, slots=True)
class ConsolePage:
    rows: tuple[ConsoleMessage, ...]
    next_before: tuple[int, int] | None  # None: this is the last page


@dataclass(frozen=True, slots=True)
class JourneyAttempt:
    step_index: int
    channel: str
    sender: str
    to: str
    tries: int
    status: Status
    error: ErrorCode
    sent_at: datetime | None
    done_at: datetime | None
    message_count: int
    late_status: Status | None
    late_error: ErrorCode | None
    late_at: datetime | None
    refs: tuple[tuple[str, bool], ...]  # the channel's ids for the send, and whether each was delivered


@dataclass(frozen=True, slots=True)
class JourneyReport:
    kind: str  # FINAL or INTERMEDIATE
    state: str  # PUSH (waiting to be pushed), PULL (waiting to be pulled), DONE
    created_at: datetime
    push_tries: int
    next_push_at: datetime | None
    notify_url: str | None
    body: str


@dataclass(frozen=True, slots=True)
class Journey:
    message: ConsoleMessage
    plan: tuple[PlannedStep, ...]
    phase: str
    step_index: int
    tries: int
    step_deadline: datetime
    next_action_at: datetime | None
    sent_at: datetime | None
    notify_url: str | None
    callback_data: str | None
    attempts: tuple[JourneyAttempt, ...]
    reports: tuple[JourneyReport, ...]


@dataclass(frozen=True, slots=True)
class FunnelStep:
    """One step of the failover funnel: how its attempts ended."""

    step_index: int
    channel: str
    attempts: int
    delivered: int
    failed_over: int  # ended without delivery, and the message went on to the next step
    failed: int  # ended without delivery, and it was the message's last attempt
    pending: int  # still waiting for the channel's answer


@dataclass(frozen=True, slots=True)
class Overview:
    since: datetime
    minutes: tuple[tuple[int, int, int], ...]  # (minute start ms, accepted, finished), oldest first
    funnel: tuple[FunnelStep, ...]
    delivery: tuple[tuple[str, int, int], ...]  # (channel, final attempts, delivered)
    latency_ms: tuple[int, ...]  # accept -> final of the messages finished since `since`, sorted
    sampled: bool  # True when the window held more rows than were read


@dataclass(frozen=True, slots=True)
class SmppConnectorState:
    """A connector's session as it is now (the console's channels page)."""

    name: str
    host: str
    port: int
    bound: bool
    binds_attempted: int
    window: int
    window_in_use: int  # submit_sm sent and not yet answered
    throughput_per_s: float  # 0: unlimited
    paused: bool  # submits held back after the SMSC's throttling
    last_error: str | None
    last_error_at: datetime | None


@dataclass(frozen=True, slots=True)
class MessengerPageState:
    """A Page the Graph sender has sent from, and its pauses now."""

    page_id: str
    paused_until: datetime | None
    paused_reason: str | None
    phone_paused_until: datetime | None  # sends by phone number stopped
    phone_paused_reason: str | None
    throttled_until: datetime | None


@dataclass(frozen=True, slots=True)
class ChannelStates:
    smpp: tuple[SmppConnectorState, ...] = ()
    pages: tuple[MessengerPageState, ...] = ()


class ConsoleStore(Protocol):
    """What the console reads; `account_id` None is the operator, who sees every account."""

    async def search(self, account_id: int | None, query: ConsoleQuery) -> ConsolePage: ...
    async def journey(self, account_id: int | None, pk: int) -> Journey | None: ...
    async def overview(self, account_id: int | None, since: datetime, now: datetime) -> Overview: ...
    async def account_names(self) -> dict[int, str]: ...
    async def scenarios(self, keys: Sequence[str]) -> dict[str, Scenario]:
        """The scenarios of these keys, whichever account's (keys are unique): the overview's
        funnel names them."""
        ...


class ScenarioStore(Protocol):
    async def create(self, account_id: int, scenario: Scenario, now: datetime) -> Scenario: ...
    async def update(self, account_id: int, scenario: Scenario) -> bool: ...
    async def delete(self, account_id: int, key: str) -> bool: ...
    async def get(self, account_id: int, key: str) -> Scenario | None: ...
    async def default(self, account_id: int) -> Scenario | None: ...
    async def list(
        self, account_id: int, is_default: bool | None, page: int, limit: int
    ) -> list[Scenario]: ...


class ApplicationKeys(Protocol):
    async def list_applications(self, account_id: int) -> list[MessengerApplication]: ...


class WebhookPoster(Protocol):
    """POSTs a JSON body to a customer's URL (notifyUrl pushes, inbound forwarding).

    Returns the HTTP status; raises `ChannelUnavailable` when no answer came (refused, timeout).
    """

    async def post_json(self, url: str, body: bytes) -> int: ...


@dataclass(frozen=True, slots=True)
class DuePush:
    report_id: int
    url: str
    body: bytes
    tries: int
    created_at: datetime
    kind: str
    message_id: str
    token: int = 0  # the claim's fencing token, presented again by its settlement


@dataclass(frozen=True, slots=True)
class PushSettlement:
    report_id: int
    state: ReportState  # DONE (pushed or dropped), PULL (gave up: queued for pull), PUSH (retry)
    tries: int
    retry_at: datetime | None = None
    token: int = 0  # the claim's: a settlement of a claim taken over since is not written


class PushStore(Protocol):
    async def claim_pushes(self, now: datetime, lease_s: float, limit: int) -> list[DuePush]: ...
    async def settle_pushes(self, settlements: Sequence[PushSettlement]) -> list[bool]:
        """Write each settlement whose claim still holds its report (False: taken over)."""
        ...


# --- operator data: SMPP connectors, SMS routes, price list ----------------------------------


class ConnectorStore(Protocol):
    """SMPP connectors and SMS routes (docs/channels.md#routes-and-connectors)."""

    async def connectors(self) -> list[SmppConnector]: ...
    async def routes(self) -> list[SmsRoute]: ...
    async def add_connector(self, connector: SmppConnector, now: datetime) -> bool:
        """False when a connector of that name exists."""
        ...

    async def replace_connector(self, connector: SmppConnector) -> bool: ...
    async def delete_connector(self, name: str) -> bool: ...
    async def set_route(self, route: SmsRoute) -> None: ...
    async def delete_route(self, prefix: str) -> bool: ...


class PriceStore(Protocol):
    """The price list (docs/api.md#prices)."""

    async def prices(self) -> list[Price]: ...
    async def set_price(self, price: Price) -> None: ...
    async def delete_price(self, channel: str, country: str) -> bool: ...


class PriceList(Protocol):
    """Prices as the hot path reads them: from memory, never a database read per message."""

    def for_destination(self, channel: str, to: str, to_kind: AddressKind = AddressKind.PHONE) -> Price:
        """The price of one message on `channel` to `to`: a phone number's country price, else the
        channel's default, else 0 EUR."""
        ...


# --- Messenger: management, webhooks and inbound forwarding ----------------------------------


class MessengerApplicationStore(MessengerDirectory, ApplicationKeys, Protocol):
    """Applications and their users as the management API changes them."""

    async def create_application(self, app: MessengerApplication, now: datetime) -> None: ...
    async def update_application(self, app: MessengerApplication) -> None: ...
    async def delete_application(self, account_id: int, key: str) -> bool: ...
    async def list_users(self, application_key: str, limit: int, offset: int) -> list[MessengerUser]: ...
    async def set_user_phone(self, application_key: str, user_key: str, phone_number: str | None) -> bool: ...
    async def delete_user(self, application_key: str, user_key: str) -> bool: ...


class MessengerWebhookCodec(Protocol):
    """Meta's webhook protocol: signature, verification challenge, and the events of a body."""

    def verify_signature(self, app_secret: str, raw_body: bytes, header: str | None) -> bool: ...
    def verify_challenge(self, params: Mapping[str, str], verify_token: str) -> str | None: ...
    def parse(self, raw_body: bytes) -> WebhookBatch:
        """The usable events and the skipped elements; raises `ValidationFailed` when the body is
        not a Meta notification."""
        ...


@dataclass(frozen=True, slots=True)
class NewForward:
    """One POST to an application's `webhookUrl`, queued in the forwarding outbox."""

    url: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Registration:
    user: MessengerUser
    is_new: bool  # this event created the user key


@dataclass(frozen=True, slots=True)
class ForwardRecord:
    id: int
    application_key: str
    url: str
    body: bytes
    created_at: datetime
    tries: int
    token: int = 0  # the claim's fencing token, presented again by its settlement


class InboundStore(Protocol):
    """What the Meta webhook writes: event keys (dedupe), registrations, the forwarding outbox."""

    async def accept_inbound(
        self,
        dedupe_key: str,
        user: MessengerUser,
        now: datetime,
        forwards: Callable[[Registration], Sequence[NewForward]],
    ) -> Registration | None:
        """In one transaction: record `dedupe_key` (None, and nothing else, when it was seen before),
        register `user` once per (application, psid) or touch the existing one, and queue the
        forwards `forwards` builds for that registration."""
        ...

    async def seen(self, dedupe_key: str) -> bool: ...
    async def mark_seen(self, dedupe_key: str, application_key: str, now: datetime) -> None: ...
    async def user_by_psid(self, application_key: str, psid: str) -> MessengerUser | None: ...

    async def waiting_refs(
        self, application_key: str, addresses: Sequence[str], sent_until: datetime
    ) -> list[str]:
        """Graph message ids of FACEBOOK steps from this application to these addresses (user key,
        phone digits) that are still waiting for delivery and were sent at or before `sent_until`."""
        ...

    async def expired_refs(
        self, application_key: str, addresses: Sequence[str], sent_until: datetime, *, read: bool
    ) -> list[str]:
        """Graph message ids of FACEBOOK steps from this application to these addresses that
        expired (the message failed over) unread, sent at or before `sent_until`: what a late read
        covers. For a delivery (`read` false), only those that heard of no delivery yet."""
        ...


class ForwardStore(Protocol):
    async def claim_forwards(self, now: datetime, lease_s: float, limit: int) -> list[ForwardRecord]:
        """Due forwards, leased for `lease_s` (database time) so no other loop posts them meanwhile."""
        ...

    async def settle_forward(self, forward: ForwardRecord, tries: int, next_try_at: datetime | None) -> bool:
        """After a try of this claim: `next_try_at` None means delivered or given up. False when the
        claim was taken over meanwhile (nothing written)."""
        ...


@dataclass(frozen=True, slots=True)
class IdempotentAnswer:
    body_digest: str
    status_code: int  # 0: reserved by an earlier version before its answer, which never came
    response: bytes


@dataclass(frozen=True, slots=True)
class IdempotentRequest:
    """A send request that came with an `Idempotency-Key` (docs/api.md#idempotency)."""

    account_id: int
    key: str
    body_digest: str
    now: datetime


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """What the message store keeps with a request's messages, in their transaction: the key, and
    the 200 answer, rendered from the insert's result (one flag per message, False for a client
    message id already used)."""

    request: IdempotentRequest
    answer: Callable[[list[bool]], bytes]


@dataclass(frozen=True, slots=True)
class IdempotentSend(Generic[R]):
    """An idempotent request as a send service gets it: `render` turns the service's result into
    the 200 answer's body, so that the store can keep the answer with the messages."""

    request: IdempotentRequest
    render: Callable[[R], bytes]

    def claim(self, result_of: Callable[[list[bool]], R]) -> IdempotencyClaim:
        """The claim for the store, given how the service makes its result from the insert's."""
        render = self.render
        return IdempotencyClaim(self.request, lambda inserted: render(result_of(inserted)))


class KeyClaimed(Exception):
    """The request's `Idempotency-Key` was kept by another request meanwhile."""


class IdempotencyStore(Protocol):
    async def lookup(self, account_id: int, key: str, now: datetime) -> IdempotentAnswer | None:
        """The answer kept for the key if it is younger than the retention (24 h), else None."""
        ...


@dataclass(frozen=True, slots=True)
class Retention:
    """How long things are kept (docs/api.md#retention): unpulled reports 48 h, logs 30 days by default."""

    report_s: float = 48 * 3600.0
    log_s: float = 30 * 86400.0
    done_report_s: float = 3600.0  # reports already pulled or pushed
    idempotency_s: float = 24 * 3600.0
    webhook_event_s: float = 7 * 86400.0  # Meta's retries come within hours


class Housekeeping(Protocol):
    async def purge(self, now: datetime, retention: Retention) -> int: ...


# --- metrics ---------------------------------------------------------------------------------


# A step's funnel: the channel took it; it met its criterion; it failed, by reason (then the message
# failed over, or ended on its last step); a delivery or read came after it had failed over.
FUNNEL_OUTCOMES = ("sent", "met", "failed_rejected", "failed_receipt", "failed_expired", "late_success")


class Metrics(Protocol):
    """Counters the services move, for `/metrics` (implemented by `omnirelay.metrics`).

    Labels are small closed sets: api FACEBOOK/OMNI, channel FACEBOOK/SMS, group a status group name.
    """

    def accepted(self, api: Api) -> None:
        """A message was committed by a send API (one per messageId, rejected ones included)."""
        ...

    def final(self, channel: str, group: str) -> None:
        """A message reached its final status (its final report was queued)."""
        ...

    def failover(self, channel: str) -> None:
        """A step on `channel` failed and the message moved on to its next step."""
        ...

    def send_error(self, channel: str, kind: str) -> None:
        """A channel refused a send: kind `unavailable` (retried) or `rejected` (permanent)."""
        ...

    def receipt(self, result: str) -> None:
        """A receipt was `applied` to its message, or recorded as `late` (after a failover)."""
        ...

    def push(self, result: str) -> None:
        """A report push to notifyUrl: `ok`, `failed` (will retry) or `given_up`."""
        ...

    def webhook_skipped(self, kind: str) -> None:
        """A Meta webhook element of `kind` (domain.messenger_events.SKIPPABLE_KINDS) could not be
        used and was skipped; the rest of its batch was handled."""
        ...

    def funnel(self, scenario: str, step: int, channel: str, outcome: str) -> None:
        """A step of an OMNI scenario (docs/api.md#analytics): `outcome` one of `FUNNEL_OUTCOMES`."""
        ...


class NoMetrics:
    """Counts nothing: the default where no `Metrics` is given (tests, tools)."""

    def accepted(self, api: Api) -> None:
        pass

    def final(self, channel: str, group: str) -> None:
        pass

    def failover(self, channel: str) -> None:
        pass

    def send_error(self, channel: str, kind: str) -> None:
        pass

    def receipt(self, result: str) -> None:
        pass

    def push(self, result: str) -> None:
        pass

    def webhook_skipped(self, kind: str) -> None:
        pass

    def funnel(self, scenario: str, step: int, channel: str, outcome: str) -> None:
        pass


NO_METRICS: Metrics = NoMetrics()


@dataclass(frozen=True, slots=True)
class Backlog:
    """What waits, sampled when `/metrics` is scraped."""

    due: int  # messages whose next action is due now (nobody has claimed them yet)
    sending: int  # claimed by a dispatcher, send under way
    scheduled: int  # first step or a retry due later
    waiting_receipt: int  # sent; waiting for a receipt until the step's deadline
    reports_pull: int  # reports queued for GET .../reports
    reports_push: int  # reports waiting to be pushed to notifyUrl


class NodeStore(Protocol):
    """Cluster membership (docs/architecture.md#cluster-membership), in the database's clock."""

    async def beat(self, node_id: str, host: str, pid: int, version: str) -> None:
        """Record the node's heartbeat now (database time); the first beat also its start."""
        ...

    async def stopped(self, node_id: str) -> None: ...

    async def members(self) -> tuple[datetime, list[Node]]:
        """The database's time now, and every node recorded, newest start first."""
        ...

    async def forget(self, older_than_s: float) -> int:
        """Remove nodes stopped or silent for longer than this; the number removed."""
        ...


class BindSlotStore(Protocol):
    """SMPP bind slots (docs/architecture.md#smpp-binds), leased in the database's clock."""

    async def renew(self, node_id: str, lease_s: float) -> dict[str, int]: ...

    async def take(self, node_id: str, connector: str, binds: int, lease_s: float) -> int | None: ...

    async def release(self, node_id: str, connectors: Collection[str] | None = None) -> None: ...

    async def tidy(self, binds: Mapping[str, int]) -> None: ...


class OperatorSessionStore(Protocol):
    """The operator's console sessions by token digest (docs/console.md#sign-in-and-sessions)."""

    async def create(self, token_digest: str, now: datetime) -> None: ...

    async def last_used(self, token_digest: str) -> int | None: ...

    async def touch(self, token_digest: str, now: datetime) -> None: ...

    async def delete(self, token_digest: str, *, idle_before: datetime | None = None) -> None: ...
